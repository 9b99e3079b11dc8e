from pathlib import Path

from molebench.core.runtime import logged
from molebench.report import site

inp = snakemake.input
with logged(snakemake.log[0], offline=snakemake.config["offline"]):
    site.build_site(snakemake.config, {Path(p).stem: p for p in [*inp.tables, *inp.masking]},
                    {Path(p).stem: p for p in inp.figures}, inp.gain, (inp.claims, inp.comparisons),
                    list(inp.evaluations), sorted(map(str, Path(snakemake.params.benchmarks).rglob("*.tsv"))), inp.faults, snakemake.output[0],
                    {Path(p).stem: p for p in inp.ramole}, inp.get("t2i"), inp.get("pool_gain"))
