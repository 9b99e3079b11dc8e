from molebench.core.runtime import logged
from molebench.nlp import report

inputs = {variant: [dirs] if isinstance(dirs, str) else list(dirs) for variant, dirs in snakemake.input.items()}
with logged(snakemake.log[0], offline=snakemake.config["offline"]):
    report.figure(snakemake.wildcards.figure, snakemake.config, inputs, snakemake.output.png, snakemake.output.csv)
