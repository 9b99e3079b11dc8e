from molebench.core.runtime import logged
from molebench.ramole import stages

pool = snakemake.params.pool
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.embed(dict(zip(pool, snakemake.input.data, strict=True)), snakemake.input.retriever,
                 snakemake.config["ramole"], dict(zip(pool, snakemake.output, strict=True)))
