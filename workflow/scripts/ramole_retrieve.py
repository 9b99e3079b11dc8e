from molebench import pipeline, ramole

names = list(ramole.pool(snakemake.config))  # inputs are listed in pool order
with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    ramole.retrieve(dict(zip(names, snakemake.input.embeddings, strict=True)),
                    dict(zip(names, snakemake.input.data, strict=True)), snakemake.input.retriever,
                    snakemake.params.ramole, snakemake.output[0])
