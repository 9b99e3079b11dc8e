# Helpers only: the parse-time config check and the input functions, all backed by the tracks' plans.
from molebench.config import check as check_config
from molebench.core.io import resource
from molebench.core.data import load_task
from molebench.nlp import plan

check_config(config)  # expands the `scaling` section's groups (MoLE Table 6) into ordinary groups, then checks

THREADS = config["threads_per_job"]
# rule -> a profile's `set-resources` (plain values, as profiles give them; no expressions)
PROFILE_RESOURCES = {rule: {name: value.raw for name, value in resources.items()}
                     for rule, resources in workflow.resource_settings.overwrite_resources.items()}
RES = config["results_dir"]  # every scale writes under its own roots, so smoke outputs never satisfy mini targets
REP = config["reports_dir"]


def variant_cfg(w):
    return config["variants"][w.variant]


def composition_adapters(w):
    return plan.adapter_dirs(config, w.variant, w.group, int(w.seed))


def composition_loras(w):
    return plan.lora_names(config, w.variant, w.group)


def composition_data(w):
    if not plan.method_of(config, w.variant).trainable or plan.trained_variant(config, w.variant) != w.variant:
        raise ValueError(f"variant {w.variant} trains nothing of its own, so it has no compose job")
    return plan.data_dirs(config, plan.group_tasks(config, w.variant, w.group))


def evaluated_tasks(w):
    return plan.evaluated_tasks(config, w.variant, w.group)


def evaluated_data(w):
    return plan.scored_data(config, evaluated_tasks(w))


def lm_eval_folder(w):
    return plan.lm_eval_folder(config, evaluated_tasks(w))


def scoring_inputs(scorings, key):
    """The folders an evaluate batch reads under one key of its scorings (plan.scoring), each once."""
    found = []
    for s in scorings:
        value = s[key]  # LoRAs: name -> folder; trained state: a folder or None; data and lm-eval: lists
        if isinstance(value, dict):
            value = list(value.values())
        found += value if isinstance(value, list) else [value]
    return list(dict.fromkeys(f for f in found if f))


def task_sources(w):
    """The bigbench archive, for tasks streamed from it."""
    return [f"{config['data']['raw_dir']}/bigbench-1.0.0.tar.gz"] if load_task(w.task).source["kind"] == "bigbench" else []
