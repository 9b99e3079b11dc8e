from molebench import pipeline

with pipeline.logged(snakemake.log[0], offline=snakemake.config["offline"]):
    pipeline.masking_table(snakemake.config, list(snakemake.input), snakemake.output[0])
