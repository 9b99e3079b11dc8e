from molebench.core.runtime import logged
from molebench.nlp import stages

w = snakemake.wildcards
loras = dict(zip(snakemake.params.loras, snakemake.input.adapters, strict=True))
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    for drop, out_dir in zip(snakemake.params.drops, snakemake.output, strict=True):
        stages.masked_evaluate(w.variant, snakemake.params.variant, [drop], snakemake.params.tasks,
                               snakemake.input.base, loras, snakemake.input.method[0] if snakemake.input.method else None,
                               list(snakemake.input.data), snakemake.params.eval, int(w.seed), out_dir,
                               snakemake.params.lm_eval)
