from molebench.core.runtime import logged
from molebench.core.stages import base_model

with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    base_model(snakemake.params.model, snakemake.output[0])
