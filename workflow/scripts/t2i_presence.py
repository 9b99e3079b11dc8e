from molebench.core.runtime import logged
from molebench.t2i import stages

with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.presence_stage(snakemake.params.t2i, snakemake.input.world, snakemake.output[0])
