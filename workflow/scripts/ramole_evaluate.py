from molebench.core.runtime import logged
from molebench.ramole import plan, stages

cfg = snakemake.params.ramole
names = list(plan.pool(snakemake.config))  # inputs are listed in pool order
loras = dict(zip(names, snakemake.input.loras, strict=True))
data = dict(zip(names, snakemake.input.data, strict=True))
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    for method, out_dir in zip(cfg["methods"], snakemake.output, strict=True):
        print(f"[ramole_evaluate] {method}", flush=True)
        router = snakemake.input.router[0] if plan.trains_router(method) else None
        stages.evaluate(method, snakemake.params.settings[method], snakemake.input.base, loras, data,
                        snakemake.input.retrieval, router, cfg, int(snakemake.wildcards.seed), out_dir)
