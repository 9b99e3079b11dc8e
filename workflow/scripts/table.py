from molebench import pipeline

with pipeline.logged(snakemake.log[0], offline=snakemake.config["offline"]):
    pipeline.table(snakemake.wildcards.table, snakemake.config, list(snakemake.input), snakemake.output[0])
