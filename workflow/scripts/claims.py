from pathlib import Path

from molebench import pipeline

with pipeline.logged(snakemake.log[0], offline=snakemake.config["offline"]):
    pipeline.claims(snakemake.config, list(snakemake.input.evaluations),
                    {Path(p).stem: p for p in snakemake.input.figures}, snakemake.output.ledger,
                    snakemake.output.comparisons, {Path(p).stem: p for p in snakemake.input.ramole},
                    list(snakemake.input.t2i))
