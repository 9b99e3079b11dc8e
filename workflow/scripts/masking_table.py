from molebench.core.runtime import logged
from molebench.nlp import report

with logged(snakemake.log[0], offline=snakemake.config["offline"]):
    report.masking_table(snakemake.config, list(snakemake.input), snakemake.output[0])
