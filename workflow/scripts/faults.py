from molebench import pipeline

with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    pipeline.faults(snakemake.params.kills, snakemake.output[0])
