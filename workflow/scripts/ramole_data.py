from molebench import pipeline, ramole

with pipeline.logged(snakemake.log[0], offline=snakemake.config["offline"]):
    ramole.pool_data(snakemake.params.spec, snakemake.params.data, snakemake.output[0])
