from molebench.core.runtime import logged
from molebench.t2i import stages

w = snakemake.wildcards
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.compose_stage(snakemake.params.t2i, w.variant, w.composition, int(w.seed), snakemake.input.base,
                       snakemake.params.experts, snakemake.input.clip, snakemake.input.world, snakemake.output[0])
