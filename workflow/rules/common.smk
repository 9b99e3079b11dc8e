# Helpers only: the parse-time config check and the input functions, all backed by molebench.plan.
from molebench import plan

plan.expand(config)  # the `scaling` section's groups (MoLE Table 6) become ordinary groups
plan.check(config)

THREADS = config["threads_per_job"]
RES = config["results_dir"]  # every scale writes under its own roots, so smoke outputs never satisfy mini targets
REP = config["reports_dir"]


def variant_cfg(w):
    return config["variants"][w.variant]


def composition_adapters(w):
    return plan.adapter_dirs(config, w.variant, w.group, int(w.seed))


def composition_data(w):
    if not plan.method_of(config, w.variant).trainable or plan.trained_variant(config, w.variant) != w.variant:
        raise ValueError(f"variant {w.variant} trains nothing of its own, so it has no compose job")
    return [f"{RES}/data/{t}" for t in plan.group_tasks(config, w.variant, w.group)]


def trained_method(w):
    """Only trainable methods have a compose job (a `scored_from` variant uses its source's); the others are built
    inside the evaluate job."""
    if not plan.method_of(config, w.variant).trainable:
        return []
    return [f"{RES}/methods/{plan.trained_variant(config, w.variant)}/{w.group}/seed{w.seed}"]


def evaluated_data(w):
    return [f"{RES}/data/{t}" for t in plan.evaluated_tasks(config, w.variant, w.group)]


def task_sources(w):
    """The bigbench archive, for tasks streamed from it."""
    from molebench.data import load_task

    return [f"{config['data']['raw_dir']}/bigbench-1.0.0.tar.gz"] if load_task(w.task).source["kind"] == "bigbench" else []
