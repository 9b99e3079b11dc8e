from molebench.core.runtime import logged
from molebench.ramole import plan, stages

cfg = snakemake.params.ramole
names = list(plan.pool(snakemake.config))  # inputs are listed in pool order
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.evaluate(snakemake.wildcards.method, snakemake.params.settings, snakemake.input.base,
                    dict(zip(names, snakemake.input.loras, strict=True)),
                    dict(zip(names, snakemake.input.data, strict=True)), snakemake.input.retrieval,
                    snakemake.input.router[0] if snakemake.input.router else None, cfg, int(snakemake.wildcards.seed),
                    snakemake.output[0])
