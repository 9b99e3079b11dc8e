from molebench import pipeline

with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    pipeline.task_data(snakemake.wildcards.task, snakemake.params.data, snakemake.output[0])
