from molebench.core.runtime import logged
from molebench.t2i import report

config = snakemake.config
with logged(snakemake.log[0], offline=config["offline"]):
    report.report_stage(snakemake.params.t2i, config["scale"], list(snakemake.input.evaluations),
                        snakemake.input.masking_png, snakemake.input.masking_csv,
                        snakemake.input.get("t2i_preconditions"), snakemake.output[0])
