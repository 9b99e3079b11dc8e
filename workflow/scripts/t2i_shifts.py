from molebench.core.runtime import logged
from molebench.t2i import stages

w = snakemake.wildcards
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.shifts_stage(snakemake.params.t2i, w.variant, w.subject, int(w.seed), snakemake.input.base,
                      snakemake.input.world, snakemake.output[0])
