from molebench.core.runtime import logged
from molebench.t2i import stages

with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    stages.masking_stage(snakemake.params.t2i, snakemake.params.composition, snakemake.params.seed,
                       snakemake.input.base, snakemake.params.experts, snakemake.input.method,
                       (list(snakemake.input.presence) or [None])[0],
                       snakemake.output.png, snakemake.output.csv)
