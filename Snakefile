# molebench: train per-task LoRAs once, compose them with every method, score everything the same way, report.
#   snakemake --cores all reproduce                                 mini scale (config/config.yaml), offline
#   snakemake --cores 2 --configfile config/smoke.yaml reproduce    tiny models, minutes
from snakemake.utils import min_version, validate

from molebench import scheduling
from molebench.report import budget

min_version("9.0")
scheduling.install()  # one re-evaluation timer in Snakemake's scheduler, not one more per finished job
scheduling.claim_memory(workflow)  # the machine's memory, so that a job retried for memory runs alone (profile)


# A config given with --configfile replaces the mini default instead of being merged into it (a smoke run must not
# inherit the mini groups); --config key=value overrides apply on top of either.
if "scale" not in config:

    configfile: "config/config.yaml"



# generated from molebench.config's models (`make schema`); fills the defaults
validate(config, "workflow/schemas/config.schema.yaml")
budget.use_reference(config["budget"].get("reference"))  # the progress lines' times for rules not yet timed here


# the default profile caps local GPU jobs at one; on a cluster each job gets its own
resource_scopes:
    gpu="local",


wildcard_constraints:
    seed=r"\d+",
    task=r"[A-Za-z0-9_\-]+",
    group=r"[A-Za-z0-9_\-]+",
    variant=r"[A-Za-z0-9_\-]+",
    lora=r"[A-Za-z0-9_\-]+",
    revision=r"[A-Za-z0-9_.\-]+",


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/adapters.smk"
include: "workflow/rules/methods.smk"
include: "workflow/rules/ramole.smk"  # RAMoLE (issue 6); before report.smk, whose site reads its tables
include: "workflow/rules/scaling.smk"  # MoLE Table 6: LoRAs of the pool recipe for the scored group

T2I_PRECONDITIONS = {}  # t2i.smk's checks, a named input of the claims rule: none without a `t2i` world

# text-to-image (issue 7): only when the config has a `t2i` section; before report.smk, whose ledger reads its checks
if "t2i" in config:

    include: "workflow/rules/t2i.smk"


include: "workflow/rules/report.smk"


rule reproduce:
    default_target: True
    input:
        f"{REP}/site",
