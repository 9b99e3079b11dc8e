from pathlib import Path

from molebench.core.runtime import logged
from molebench.report import claims

with logged(snakemake.log[0], offline=snakemake.config["offline"]):
    claims.write_ledger(snakemake.config, list(snakemake.input.evaluations),
                        {Path(p).stem: p for p in snakemake.input.figures},
                        list(snakemake.input.ramole), list(snakemake.input.t2i),
                        claims.load_claims(snakemake.input.claims), snakemake.output.ledger, snakemake.output.comparisons,
                        snakemake.input.get("pool_gain"), snakemake.input.get("t2i_preconditions"))
