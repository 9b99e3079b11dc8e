from molebench import pipeline

with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    pipeline.train_lora(snakemake.input.base, snakemake.wildcards.task, snakemake.input.data, snakemake.params.lora,
                        snakemake.params.train, int(snakemake.wildcards.seed), snakemake.output[0])
