from molebench import pipeline

with pipeline.logged(snakemake.log[0], offline=False):  # the one job that reaches the package index
    pipeline.bigbench_archive(snakemake.params.raw_dir)
