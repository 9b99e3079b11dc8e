from pathlib import Path

from molebench.core.runtime import logged
from molebench.ramole import plan, report

inp = snakemake.input
evaluations = {}  # seed -> method -> its evaluation folder
for path in inp.evaluations:
    evaluations.setdefault(plan.seed_of(path), {})[Path(path).name] = path
with logged(snakemake.log[0], offline=snakemake.config["offline"]):
    report.tables({plan.seed_of(p): p for p in inp.retrievals}, evaluations, snakemake.params.paper_dir,
                  {Path(p).stem: p for p in snakemake.output})
