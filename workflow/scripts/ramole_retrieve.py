from molebench.core.runtime import logged
from molebench.ramole import plan, stages

names = list(plan.pool(snakemake.config))  # inputs are listed in pool order
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.retrieve(dict(zip(names, snakemake.input.embeddings, strict=True)),
                    dict(zip(names, snakemake.input.data, strict=True)), snakemake.input.retriever,
                    snakemake.params.ramole, snakemake.output[0])
