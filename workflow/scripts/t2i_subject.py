from molebench.core.runtime import logged
from molebench.t2i import stages

w = snakemake.wildcards
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.subject_stage(snakemake.params.t2i, w.subject, int(w.seed), snakemake.input.base, snakemake.input.world,
                       (list(snakemake.input.presence) or [None])[0], snakemake.output[0])
