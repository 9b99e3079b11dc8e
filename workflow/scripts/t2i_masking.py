from molebench import pipeline
from molebench.t2i import jobs

with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    jobs.masking_stage(snakemake.params.t2i, snakemake.params.composition, snakemake.params.seed,
                       snakemake.input.base, snakemake.params.experts, snakemake.input.method,
                       (list(snakemake.input.presence) or [None])[0],
                       snakemake.output.png, snakemake.output.csv)
