"""What the DAG must run for a config: the checks made at parse time and the paths each target needs.

The Snakefile validates the config's shape against workflow/schemas/config.schema.yaml; `check` adds what a schema
cannot say (unknown methods, tasks, groups and variants; method options), with messages that name the fix.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from molebench import methods
from molebench.data import list_tasks, load_task

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    pass


def load_config(path: str | Path) -> dict:
    """The config as the Snakefile sees it: schema-validated with defaults filled, then checked."""
    from snakemake.utils import validate

    config = yaml.safe_load(Path(path).read_text())
    validate(config, str(SCHEMA))
    check(config)
    return config


def check(config: dict) -> None:
    from peft import LoraConfig

    try:
        LoraConfig(**config["lora"])
    except (TypeError, ValueError) as err:
        raise ConfigError(f"lora: not a valid PEFT LoraConfig: {err}") from None
    known_tasks = set(list_tasks())
    for group, tasks in config["groups"].items():
        for task in tasks:
            if task not in known_tasks:
                raise ConfigError(f"groups.{group}: unknown task {task!r}; add data/tasks/{task}.yaml or use one of: "
                                  f"{', '.join(sorted(known_tasks))}")
            load_task(task)  # parse it now, so a broken task file fails before any job starts
    for name, variant in config["variants"].items():
        try:
            cls = methods.get(variant["method"])
        except KeyError as err:
            raise ConfigError(f"variants.{name}: {err.args[0]}") from None
        try:
            cls.config_class.from_dict(variant.get("options", {}))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"variants.{name}.options: {err}") from None
        if "train" in variant and not cls.trainable:
            raise ConfigError(f"variants.{name}: method {cls.name!r} trains nothing; remove its `train` section")
    for name, table in config["tables"].items():
        for group in table["groups"]:
            if group not in config["groups"]:
                raise ConfigError(f"tables.{name}: unknown group {group!r}; groups: {', '.join(config['groups'])}")
        for variant in table["variants"]:
            if variant not in config["variants"]:
                raise ConfigError(f"tables.{name}: unknown variant {variant!r}; variants: "
                                  f"{', '.join(config['variants'])}")
    from molebench.figures import FIGURE_KINDS

    for name, figure in config.get("figures", {}).items():
        if figure["kind"] not in FIGURE_KINDS:
            raise ConfigError(f"figures.{name}: unknown kind {figure['kind']!r}; kinds: {', '.join(FIGURE_KINDS)}")
        if figure["group"] not in config["groups"]:
            raise ConfigError(f"figures.{name}: unknown group {figure['group']!r}; groups: {', '.join(config['groups'])}")
        for variant in figure["variants"]:
            if variant not in config["variants"] or not method_of(config, variant).trainable:
                raise ConfigError(f"figures.{name}: {variant!r} is not a variant of a trained method (MoLE)")
    for required in ("zero-shot", "single"):
        if not any(v["method"] == required for v in config["variants"].values()):
            raise ConfigError(f"variants: a variant with method {required!r} is needed for the LoRA gain check")
    if "ramole" in config:  # RAMoLE (issue 6)
        from molebench import ramole

        ramole.check(config)


def method_of(config: dict, variant: str):
    return methods.get(config["variants"][variant]["method"])


def seeds_of(config: dict, variant: str) -> list[int]:
    return config["seeds"] if method_of(config, variant).seeded else config["seeds"][:1]


def compositions(config: dict, variant: str, groups: list[str]) -> list[tuple[str, str]]:
    """(group, task) pairs a variant is scored on: a per-task method's group is the task itself."""
    per_task = method_of(config, variant).per_task
    return [(task, task) if per_task else (group, task) for group in groups for task in config["groups"][group]]


def evaluated_tasks(config: dict, variant: str, group: str) -> list[str]:
    return [group] if method_of(config, variant).per_task else config["groups"][group]


def group_tasks(config: dict, variant: str, group: str) -> list[str]:
    """Tasks whose LoRAs (and training data) a composition uses."""
    cls = method_of(config, variant)
    if not cls.uses_experts and not cls.trainable:
        return []
    return [group] if cls.per_task else config["groups"][group]


def evaluation_dirs(config: dict, variant: str, groups: list[str]) -> list[str]:
    """One evaluate job per (variant, group, seed) scores every task of the group into one folder."""
    pairs = dict.fromkeys(g for g, _ in compositions(config, variant, groups))
    return [f"{config['results_dir']}/metrics/{variant}/{group}/seed{seed}"
            for group in pairs for seed in seeds_of(config, variant)]


def table_inputs(config: dict, table: str) -> list[str]:
    spec = config["tables"][table]
    return list(dict.fromkeys(d for v in spec["variants"] for d in evaluation_dirs(config, v, spec["groups"])))


def figure_inputs(config: dict, figure: str) -> dict[str, list[str]]:
    """variant -> the folders a figure reads: compose outputs (training logs) or evaluate outputs (gate weights)."""
    spec = config["figures"][figure]
    stage = "methods" if spec["kind"] == "gate_entropy" else "metrics"
    return {v: [f"{config['results_dir']}/{stage}/{v}/{spec['group']}/seed{s}" for s in seeds_of(config, v)]
            for v in spec["variants"]}


def used_groups(config: dict) -> list[str]:
    return list(dict.fromkeys(g for t in config["tables"].values() for g in t["groups"]))


def gain_variants(config: dict) -> list[str]:
    return [name for name, v in config["variants"].items() if v["method"] in ("zero-shot", "single")]


def gain_inputs(config: dict) -> list[str]:
    """Zero-shot and single-LoRA scores of every task a table relies on."""
    groups = used_groups(config)
    return list(dict.fromkeys(d for v in gain_variants(config) for d in evaluation_dirs(config, v, groups)))


def job_chains(config: dict) -> list[list[tuple[str, str]]]:
    """Every dependency chain from the base model to an evaluate job, as (rule, benchmark job name) steps: the
    longest one by measured time is the DAG's critical path (the site shows it)."""
    chains = []
    for path in all_evaluation_dirs(config):
        variant, group, seed = Path(path).parts[-3:]
        job = f"{variant}-{group}-{seed}"
        tail = [("compose", job)] if method_of(config, variant).trainable else []
        tail.append(("evaluate", job))
        lora_steps = [[("train_lora", f"{t}-{seed}")] for t in group_tasks(config, variant, group)] or [[]]
        chains += [[("base_model", "base"), *steps, *tail] for steps in lora_steps]
    return chains


def all_evaluation_dirs(config: dict) -> list[str]:
    return list(dict.fromkeys([d for t in config["tables"] for d in table_inputs(config, t)] + gain_inputs(config)))
