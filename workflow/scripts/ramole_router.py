from molebench import pipeline, ramole

cfg = snakemake.params.ramole
names = list(ramole.pool(snakemake.config))  # inputs are listed in pool order
with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    ramole.train_router(snakemake.input.base, dict(zip(names, snakemake.input.loras, strict=True)),
                        dict(zip(cfg["retriever"]["finetune_tasks"], snakemake.input.data, strict=True)),
                        snakemake.input.retrieval, cfg, cfg["seed"], snakemake.output[0])
