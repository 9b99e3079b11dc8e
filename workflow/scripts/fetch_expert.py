from molebench.core.adapters import fetch
from molebench.core.runtime import logged

with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    fetch(snakemake.params.expert["hub"], snakemake.params.expert["revision"], snakemake.output[0])
