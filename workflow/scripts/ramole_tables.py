from pathlib import Path

from molebench.core.runtime import logged
from molebench.ramole import report

with logged(snakemake.log[0], offline=snakemake.config["offline"]):
    report.tables(snakemake.input.retrieval, dict(zip(snakemake.params.methods, snakemake.input.evaluations,
                                                      strict=True)),
                  snakemake.config["ramole"]["seed"], snakemake.params.paper_dir,
                  {Path(p).stem: p for p in snakemake.output})
