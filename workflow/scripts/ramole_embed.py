from molebench import pipeline, ramole

with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    ramole.embed(snakemake.wildcards.task, snakemake.input.data, snakemake.input.retriever, snakemake.config["ramole"],
                 snakemake.output[0])
