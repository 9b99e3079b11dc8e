from molebench import pipeline
from molebench.t2i import jobs

w = snakemake.wildcards
with pipeline.logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    jobs.compose_stage(snakemake.params.t2i, w.variant, w.composition, int(w.seed), snakemake.input.base,
                       snakemake.params.experts, snakemake.input.clip, snakemake.input.world, snakemake.output[0])
