from molebench import pipeline

w = snakemake.wildcards
with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    pipeline.masked_evaluate(snakemake.config, w.variant, w.group, [w.lora], int(w.seed), snakemake.output[0])
