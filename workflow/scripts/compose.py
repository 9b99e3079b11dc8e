from molebench import pipeline

w = snakemake.wildcards
with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    pipeline.compose(w.variant, snakemake.params.variant, snakemake.input.base, list(snakemake.input.adapters),
                     list(snakemake.input.data), snakemake.params.train, int(w.seed), snakemake.output[0])
