from molebench.core.runtime import logged
from molebench.core.stages import bigbench_archive

with logged(snakemake.log[0], offline=False):  # the one job that reaches the package index
    bigbench_archive(snakemake.params.raw_dir)
