from molebench.core.runtime import logged
from molebench.nlp import stages

w, out = snakemake.wildcards, snakemake.output
loras = dict(zip(snakemake.params.loras, snakemake.input.adapters, strict=True))
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.compose(w.variant, snakemake.params.variant, snakemake.input.base, loras, list(snakemake.input.data),
                   snakemake.params.train, int(w.seed), out.method)
    stages.evaluate(w.variant, snakemake.params.variant, w.group, snakemake.params.tasks, snakemake.input.base,
                    loras, out.method, list(snakemake.input.scored), snakemake.params.eval, int(w.seed),
                    out.metrics, snakemake.params.lm_eval)
