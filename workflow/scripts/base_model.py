from molebench import pipeline

with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    pipeline.base_model(snakemake.params.model, snakemake.output[0])
