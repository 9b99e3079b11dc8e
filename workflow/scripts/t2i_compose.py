from molebench.core.runtime import logged
from molebench.t2i import stages

w, out = snakemake.wildcards, snakemake.output
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.compose_stage(snakemake.params.t2i, w.variant, w.composition, int(w.seed), snakemake.input.base,
                         snakemake.params.experts, snakemake.input.clip, snakemake.input.world, out.method)
    stages.evaluate_stage(snakemake.params.t2i, w.variant, w.composition, int(w.seed), snakemake.input.base,
                          snakemake.params.experts, out.method, snakemake.input.clip,
                          (list(snakemake.input.presence) or [None])[0], snakemake.input.world, out.metrics)
