from molebench.core.runtime import logged
from molebench.ramole import stages

with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.finetune_retriever(snakemake.params.data, snakemake.config["ramole"], int(snakemake.wildcards.seed),
                              snakemake.output[0])
