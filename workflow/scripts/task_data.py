from molebench.core.data import TaskSpec, write_splits
from molebench.core.runtime import logged

with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    write_splits(TaskSpec.from_dict(snakemake.params.spec), snakemake.params.data, snakemake.output[0])
