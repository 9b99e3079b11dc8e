from molebench.core.runtime import logged
from molebench.ramole import plan, stages

cfg = snakemake.params.ramole
names = list(plan.pool(snakemake.config))  # inputs are listed in pool order
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.train_router(snakemake.input.base, dict(zip(names, snakemake.input.loras, strict=True)),
                        dict(zip(cfg["retriever"]["finetune_tasks"], snakemake.input.data, strict=True)),
                        snakemake.input.retrieval, cfg, int(snakemake.wildcards.seed), snakemake.output[0])
