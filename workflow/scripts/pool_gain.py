from pathlib import Path

from molebench.core.io import write_text
from molebench.core.runtime import GAIN_FILE, logged
from molebench.report.evidence import Settings
from molebench.report.pool_gain import pool_gain_table

with logged(snakemake.log[0], offline=snakemake.config["offline"]):
    table = pool_gain_table([str(Path(d) / GAIN_FILE) for d in snakemake.input], Settings.from_config(snakemake.config))
    write_text(snakemake.output[0], table.to_csv(index=False))
