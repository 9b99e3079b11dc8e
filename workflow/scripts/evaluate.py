from molebench import pipeline, plan

w = snakemake.wildcards
with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    pipeline.evaluate(w.variant, snakemake.params.variant, w.group,
                      plan.evaluated_tasks(snakemake.config, w.variant, w.group), snakemake.input.base,
                      list(snakemake.input.adapters), snakemake.input.method[0] if snakemake.input.method else None,
                      list(snakemake.input.data), snakemake.params.eval, int(w.seed), snakemake.output[0])
