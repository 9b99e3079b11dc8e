from molebench.core.runtime import logged
from molebench.nlp import stages

w = snakemake.wildcards
loras = dict(zip(snakemake.params.loras, snakemake.input.adapters, strict=True))
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.compose(w.variant, snakemake.params.variant, snakemake.input.base, loras, list(snakemake.input.data),
                   snakemake.params.train, int(w.seed), snakemake.output[0])
