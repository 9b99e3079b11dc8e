from molebench import pipeline, ramole

cfg = snakemake.params.ramole
names = list(ramole.pool(snakemake.config))  # inputs are listed in pool order
with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    ramole.evaluate(snakemake.wildcards.method, snakemake.params.settings, snakemake.input.base,
                    dict(zip(names, snakemake.input.loras, strict=True)),
                    dict(zip(names, snakemake.input.data, strict=True)), snakemake.input.retrieval,
                    snakemake.input.router[0] if snakemake.input.router else None, cfg, cfg["seed"],
                    snakemake.output[0])
