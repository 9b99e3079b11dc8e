from molebench.core.runtime import logged
from molebench.t2i import stages

w = snakemake.wildcards
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.evaluate_stage(snakemake.params.t2i, w.variant, w.composition, int(w.seed), snakemake.input.base,
                          snakemake.params.experts, None, snakemake.input.clip,
                          (list(snakemake.input.presence) or [None])[0], snakemake.input.world, snakemake.output[0])
