from pathlib import Path

from molebench import pipeline, ramole

with pipeline.logged(snakemake.log[0], offline=snakemake.config["offline"]):
    ramole.tables(snakemake.input.retrieval, dict(zip(snakemake.params.methods, snakemake.input.evaluations,
                                                      strict=True)),
                  snakemake.config["ramole"]["seed"], {Path(p).stem: p for p in snakemake.output})
