from molebench.core.runtime import logged
from molebench.ramole import stages

with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.embed(snakemake.wildcards.task, snakemake.input.data, snakemake.input.retriever, snakemake.config["ramole"],
                 snakemake.output[0])
