from molebench.core.data import TaskSpec
from molebench.core.runtime import logged
from molebench.core.stages import train_lora

gain_spec = snakemake.params.get("gain_spec")  # pool and scaling LoRAs: scored in the job
with logged(snakemake.log[0], snakemake.threads, snakemake.config["offline"]):
    train_lora(snakemake.input.base, snakemake.wildcards.task, snakemake.input.data, snakemake.params.lora,
               snakemake.params.train, int(snakemake.wildcards.seed), snakemake.output[0],
               gain_spec and TaskSpec.from_dict(gain_spec), snakemake.params.get("eval"))
