# Helpers only: the parse-time config check and the input functions, all backed by molebench.plan.
from molebench import plan

plan.check(config)

THREADS = config["threads_per_job"]
RES = config["results_dir"]  # every scale writes under its own roots, so smoke outputs never satisfy mini targets
REP = config["reports_dir"]


def variant_cfg(w):
    return config["variants"][w.variant]


def composition_adapters(w):
    return [f"{RES}/adapters/{t}/seed{w.seed}" for t in plan.group_tasks(config, w.variant, w.group)
            if plan.method_of(config, w.variant).uses_experts]


def composition_data(w):
    if not plan.method_of(config, w.variant).trainable:
        return []
    return [f"{RES}/data/{t}" for t in plan.group_tasks(config, w.variant, w.group)]
