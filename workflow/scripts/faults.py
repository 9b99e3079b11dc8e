from molebench import faults
from molebench.core.runtime import logged

with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    faults.write_campaign(snakemake.config, snakemake.params.kills, snakemake.output[0])
