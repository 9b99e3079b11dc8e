from molebench.core.runtime import logged
from molebench.core.stages import write_splits

with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    write_splits(snakemake.params.spec, snakemake.params.data, snakemake.output[0])
