from molebench import pipeline, ramole

with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    ramole.finetune_retriever(snakemake.params.data, snakemake.config["ramole"], snakemake.config["ramole"]["seed"],
                              snakemake.output[0])
