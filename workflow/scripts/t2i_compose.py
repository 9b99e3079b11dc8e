from molebench.core.runtime import logged
from molebench.t2i import stages

w, out, params = snakemake.wildcards, snakemake.output, snakemake.params
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    for seed, method_dir, metrics_dir in zip(params.seeds, out.methods, out.metrics, strict=True):
        stages.compose_stage(params.t2i, w.variant, w.composition, seed, snakemake.input.base, params.experts,
                             snakemake.input.clip, snakemake.input.world, method_dir)
        stages.evaluate_stage(params.t2i, w.variant, w.composition, seed, snakemake.input.base, params.experts,
                              method_dir, snakemake.input.clip, (list(snakemake.input.presence) or [None])[0],
                              snakemake.input.world, metrics_dir)
