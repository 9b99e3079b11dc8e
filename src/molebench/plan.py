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
    for group, tasks in config.get("compose_from", {}).items():
        if group not in config["groups"]:
            raise ConfigError(f"compose_from.{group}: not a group; groups: {', '.join(config['groups'])}")
        for task in tasks:
            if task not in known_tasks:
                raise ConfigError(f"compose_from.{group}: unknown task {task!r}; add data/tasks/{task}.yaml")
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
        source = variant.get("scored_from")
        if source is not None:
            other = config["variants"].get(source)
            if other is None or other["method"] != variant["method"] or not cls.trainable or "scored_from" in other:
                raise ConfigError(f"variants.{name}: scored_from must name a variant of the same trainable method "
                                  f"that trains its own state, got {source!r}")
            inherited = sorted({"train", "per_task", "seeds"} & set(variant))
            if inherited:
                raise ConfigError(f"variants.{name}: a variant scored from {source!r} takes its training, seeds and "
                                  f"setting from it; remove {', '.join(inherited)}")
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
                raise ConfigError(f"figures.{name}: {variant!r} is not a variant of a trained method (MoLE, MixLoRA)")
    masking = config.get("masking")
    if masking:
        if masking["group"] not in config["groups"]:
            raise ConfigError(f"masking: unknown group {masking['group']!r}; groups: {', '.join(config['groups'])}")
        for variant in masking["variants"]:
            if variant not in config["variants"]:
                raise ConfigError(f"masking: unknown variant {variant!r}")
            cls = method_of(config, variant)
            if per_task(config, variant) or (cls.trainable and "mask" not in cls.config_class.help()):
                raise ConfigError(f"masking: {variant!r} can neither mask LoRAs (MoLE) nor be recomposed from the "
                                  "remaining LoRAs without training (NLA)")
    for required in ("zero-shot", "single"):
        if not any(v["method"] == required for v in config["variants"].values()):
            raise ConfigError(f"variants: a variant with method {required!r} is needed for the LoRA gain check")
    if "ramole" in config:  # RAMoLE (issue 6)
        from molebench import ramole

        ramole.check(config)


def method_of(config: dict, variant: str):
    return methods.get(config["variants"][variant]["method"])


def trained_variant(config: dict, variant: str) -> str:
    """The variant whose compose job trains this one's state: its `scored_from` (the same training, scored with other
    inference options, e.g. MoLE Table 5's layer ranges), else itself."""
    return config["variants"][variant].get("scored_from", variant)


def per_task(config: dict, variant: str) -> bool:
    """One composition per task (the single-task setting): the variant's `per_task`, else the method's default."""
    return config["variants"][trained_variant(config, variant)].get("per_task", method_of(config, variant).per_task)


def seeds_of(config: dict, variant: str) -> list[int]:
    """The variant's own `seeds` if it sets them (to bound an expensive variant's cost), else the config's; an
    unseeded method runs once."""
    seeds = config["variants"][trained_variant(config, variant)].get("seeds", config["seeds"])
    return seeds if method_of(config, variant).seeded else seeds[:1]


def compositions(config: dict, variant: str, groups: list[str]) -> list[tuple[str, str]]:
    """(group, task) pairs a variant is scored on: a per-task method's group is the task itself."""
    single = per_task(config, variant)
    return [(task, task) if single else (group, task) for group in groups for task in config["groups"][group]]


def evaluated_tasks(config: dict, variant: str, group: str) -> list[str]:
    return [group] if per_task(config, variant) else config["groups"][group]


def group_tasks(config: dict, variant: str, group: str) -> list[str]:
    """Tasks whose LoRAs (and training data) a composition uses: the group's own, or those the config's
    `compose_from` names for it (a composition trained on one family and scored on another, MoLE Table 8)."""
    cls = method_of(config, variant)
    if not cls.uses_experts and not cls.trainable:
        return []
    return [group] if per_task(config, variant) else lora_tasks(config, group)


def lora_tasks(config: dict, group: str) -> list[str]:
    return config.get("compose_from", {}).get(group, config["groups"][group])


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
    from molebench.figures import FROM_TRAINING

    spec = config["figures"][figure]
    stage = "methods" if spec["kind"] in FROM_TRAINING else "metrics"
    return {v: [f"{config['results_dir']}/{stage}/{v}/{group}/seed{s}"
                for group in dict.fromkeys(g for g, _ in compositions(config, v, [spec["group"]]))
                for s in seeds_of(config, v)]
            for v in spec["variants"]}


def claims_inputs(config: dict) -> tuple[list[str], list[str], list[str]]:
    """The evaluation folders, figure CSVs and RAMoLE table CSVs the claims ledger reads (data/paper/claims.yaml)."""
    from molebench.claims import load_claims, needed, needed_ramole

    claims = load_claims()
    tables, figures = needed(claims, config)
    return (list(dict.fromkeys(d for t in tables for d in table_inputs(config, t))),
            [f"{config['results_dir']}/figures/{f}.csv" for f in figures],
            [f"{config['results_dir']}/tables/{t}.csv" for t in needed_ramole(claims, config)])


def masking_spec(config: dict) -> dict:
    """The config's `masking` entry as a table spec: one group `drop-{lora}` per LoRA of its group."""
    spec = config["masking"]
    return {**spec, "groups": [f"drop-{t}" for t in lora_tasks(config, spec["group"])]}


def masking_inputs(config: dict) -> list[str]:
    spec = config.get("masking")
    if not spec:
        return []
    return [f"{config['results_dir']}/masked/{v}/{spec['group']}/seed{s}/{g}"
            for v in spec["variants"] for s in seeds_of(config, v) for g in masking_spec(config)["groups"]]


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
        tail = [("compose", f"{trained_variant(config, variant)}-{group}-{seed}")] if method_of(
            config, variant).trainable else []
        tail.append(("evaluate", job))
        lora_steps = [[("train_lora", f"{t}-{seed}")] for t in group_tasks(config, variant, group)] or [[]]
        chains += [[("base_model", "base"), *steps, *tail] for steps in lora_steps]
    return chains


def all_evaluation_dirs(config: dict) -> list[str]:
    return list(dict.fromkeys([d for t in config["tables"] for d in table_inputs(config, t)] + gain_inputs(config)))
