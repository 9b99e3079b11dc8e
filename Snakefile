# molebench: train per-task LoRAs once, compose them with every method, score everything the same way, report.
#   snakemake --cores all reproduce                                 mini scale (config/config.yaml), offline
#   snakemake --cores 2 --configfile config/smoke.yaml reproduce    tiny models, minutes
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


wildcard_constraints:
    seed=r"\d+",
    task=r"[A-Za-z0-9_\-]+",
    group=r"[A-Za-z0-9_\-]+",
    variant=r"[A-Za-z0-9_\-]+",


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/adapters.smk"
include: "workflow/rules/methods.smk"
include: "workflow/rules/report.smk"


rule reproduce:
    default_target: True
    input:
        REP + "/site",
