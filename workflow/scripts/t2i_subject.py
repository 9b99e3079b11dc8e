from molebench import pipeline
from molebench.t2i import jobs

w = snakemake.wildcards
with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    jobs.subject_stage(snakemake.params.t2i, w.subject, int(w.seed), snakemake.input.base, snakemake.input.world,
                       snakemake.output[0])
