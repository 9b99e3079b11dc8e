from pathlib import Path

from molebench import pipeline

RES = snakemake.config["results_dir"]
with pipeline.logged(snakemake.log[0], offline=snakemake.config["offline"]):
    pipeline.site(snakemake.config, {Path(p).stem: p for p in [*snakemake.input.tables, *snakemake.input.masking]},
                  {Path(p).stem: p for p in snakemake.input.figures}, snakemake.input.gain,
                  (snakemake.input.claims, snakemake.input.comparisons),
                  list(snakemake.input.evaluations), sorted(str(p) for p in Path(RES, "benchmarks").rglob("*.tsv")),
                  snakemake.input.faults, snakemake.output[0],
                  extra_tables={Path(p).stem: p for p in snakemake.input.ramole}, t2i_dir=snakemake.input.get("t2i"))
