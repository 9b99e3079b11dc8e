from molebench.core.runtime import logged
from molebench.t2i import stages

with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.base_stage(snakemake.params.t2i, snakemake.input.world, (list(snakemake.input.presence) or [None])[0],
                      snakemake.output[0])
