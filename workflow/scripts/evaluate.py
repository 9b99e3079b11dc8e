from molebench.core.runtime import logged
from molebench.nlp import stages

params = snakemake.params
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    for i, s in enumerate(params.scorings, 1):
        dropped = f" without {', '.join(s['drop'])}" if s["drop"] else ""
        print(f"[evaluate] {i}/{len(params.scorings)}: {s['variant']} on {s['group']}{dropped}, seed {s['seed']}",
              flush=True)
        stages.run_scoring(s, params.variants[s["variant"]], snakemake.input.base, params.eval, params.lm_eval)
