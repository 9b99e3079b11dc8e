from molebench import pipeline
from molebench.t2i import jobs

with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    jobs.presence_stage(snakemake.params.t2i, snakemake.input.world, snakemake.output[0])
