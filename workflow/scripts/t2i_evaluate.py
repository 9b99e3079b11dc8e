from molebench.core.runtime import logged
from molebench.t2i import stages

w = snakemake.wildcards
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    for seed, out_dir in zip(snakemake.params.seeds, snakemake.output, strict=True):
        stages.evaluate_stage(snakemake.params.t2i, w.variant, w.composition, seed, snakemake.input.base,
                              snakemake.params.experts, None, snakemake.input.clip,
                              (list(snakemake.input.presence) or [None])[0], snakemake.input.world, out_dir)
