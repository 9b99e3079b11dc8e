from molebench import pipeline

w = snakemake.wildcards
with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config.get("offline", True)):
    pipeline.evaluate(w.variant, snakemake.params.variant, w.group, w.task, snakemake.input.base,
                      list(snakemake.input.adapters), snakemake.input.method, snakemake.input.data,
                      snakemake.params.eval, int(w.seed), snakemake.output.metrics, snakemake.output.predictions)
