from molebench.core.runtime import logged
from molebench.core.stages import task_data

with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    task_data(snakemake.wildcards.task, snakemake.params.data, snakemake.output[0])
