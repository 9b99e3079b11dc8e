from molebench import pipeline
from molebench.t2i import jobs

config = snakemake.config
with pipeline.logged(snakemake.log[0], offline=config["offline"]):
    jobs.report_stage(snakemake.params.t2i, config["scale"], config["results_dir"], snakemake.input.masking_png,
                      snakemake.input.masking_csv, snakemake.output[0])
