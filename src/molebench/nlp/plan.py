"""The NLP tables' plan: what the DAG must run for a config's groups, variants, tables, figures, masking and
scaling sections, the checks made at parse time, and the result paths each target needs (the one place that knows
them besides the rules that write them).

`molebench.config` validates the config's shape; `check` adds what a schema cannot say (unknown methods, tasks,
groups and variants; method options), with messages that name the fix.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

from molebench.core import io
from molebench.core import method as methods
from molebench.core.adapters import AdapterError, rank_problem, read_config
from molebench.core.data import OWN_SPLITS, TaskSpec, list_tasks, load_task, pool_tasks
from molebench.core.errors import ConfigError
from molebench.core.training import TrainConfig, merge_train
from molebench.nlp.figures import FIGURE_KINDS, FROM_TRAINING

PER_TASK_BATCH = "per-task"  # the evaluate batch of the per-task variants' scorings (`check`: no group's name)


def expand(config: dict) -> dict:
    """Add the groups the config's `scaling:` section defines (MoLE Table 6), in place: `{group}-n{size}` for every
    size, scored on `group`'s tasks. Everything downstream (tables, claims, the site) then sees ordinary groups.
    Idempotent; called once where the config is read (workflow/rules/common.smk, `load_config`)."""
    for name in scaling_groups(config):
        tasks = config["groups"].get(config["scaling"]["group"])
        if tasks is None:
            raise ConfigError(f"scaling.group: unknown group {config['scaling']['group']!r}; groups: "
                              f"{', '.join(config['groups'])}")
        if config["groups"].setdefault(name, list(tasks)) != tasks:
            raise ConfigError(f"groups.{name}: the name of a `scaling` group; rename the group")
    return config


def check(config: dict) -> None:
    from peft import LoraConfig

    try:
        LoraConfig(**config["lora"])
    except (TypeError, ValueError) as err:
        raise ConfigError(f"lora: not a valid PEFT LoraConfig: {err}") from None
    known_tasks = set(list_tasks())
    harness = lm_eval_tasks(config)
    clash = sorted(set(harness) & known_tasks)
    if clash:
        raise ConfigError(f"lm_eval.tasks.{clash[0]}: also a task of data/tasks; a name must say which scorer is used")
    if PER_TASK_BATCH in config["groups"]:
        raise ConfigError(f"groups.{PER_TASK_BATCH}: the name of the per-task variants' evaluate batch; rename the group")
    for group, tasks in config["groups"].items():
        for task in tasks:
            if task in harness:
                if group not in config.get("compose_from", {}):
                    raise ConfigError(f"groups.{group}: lm-eval task {task!r} has no training data here, so no LoRA "
                                      f"of its own; name the LoRAs (tasks or `experts`) to compose in "
                                      f"compose_from.{group}")
                continue
            if task not in known_tasks:
                raise ConfigError(f"groups.{group}: unknown task {task!r}; add data/tasks/{task}.yaml, declare it in "
                                  f"lm_eval.tasks or use one of: {', '.join(sorted(known_tasks))}")
            load_task(task)  # parse it now, so a broken task file fails before any job starts
    check_experts(config, known_tasks)
    for group in config["data"].get("whole_splits", []):
        if group not in config["groups"]:
            raise ConfigError(f"data.whole_splits: {group!r} is not a group; groups: {', '.join(config['groups'])}")
        for task in config["groups"][group]:
            if load_task(task).source["kind"] not in OWN_SPLITS:
                raise ConfigError(f"data.whole_splits: task {task!r} of group {group!r} has no splits of its own "
                                  f"(source {load_task(task).source['kind']!r}); only hub tasks can be used whole")
    for group, tasks in config.get("compose_from", {}).items():
        if group not in config["groups"]:
            raise ConfigError(f"compose_from.{group}: not a group; groups: {', '.join(config['groups'])}")
        for task in tasks:
            if task not in known_tasks and task not in experts(config):
                raise ConfigError(f"compose_from.{group}: unknown task or expert {task!r}; add data/tasks/{task}.yaml "
                                  f"or an `experts.{task}` entry")
    for name, variant in config["variants"].items():
        cls, _ = methods.variant_method(variant, f"variants.{name}")
        if "train" in variant and not cls.trainable:
            raise ConfigError(f"variants.{name}: method {cls.name!r} trains nothing; remove its `train` section")
        TrainConfig.from_dict(merge_train(config["train"], variant.get("train")), f"variants.{name}.train")
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
    if "scaling" in config:  # MoLE Table 6
        check_scaling(config)
    check_compositions(config)
    for name, table in config["tables"].items():
        for group in table["groups"]:
            if group not in config["groups"]:
                raise ConfigError(f"tables.{name}: unknown group {group!r}; groups: {', '.join(config['groups'])}")
        for group in table.get("paper_rows", {}):
            if group not in table["groups"]:
                raise ConfigError(f"tables.{name}.paper_rows: {group!r} is not a group of the table")
        for variant in table["variants"]:
            if variant not in config["variants"]:
                raise ConfigError(f"tables.{name}: unknown variant {variant!r}; variants: "
                                  f"{', '.join(config['variants'])}")
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
            if per_task(config, variant) or (cls.trainable and not cls.can_mask):
                raise ConfigError(f"masking: {variant!r} can neither mask LoRAs (MoLE) nor be recomposed from the "
                                  "remaining LoRAs without training (NLA)")
    for reference in REFERENCES:
        if not any(methods.get(v["method"]).reference == reference for v in config["variants"].values()):
            raise ConfigError(f"variants: the LoRA gain check needs a variant whose method is a {reference} "
                              f"reference ({', '.join(n for n, c in methods.available().items() if c.reference == reference)})")


def experts(config: dict) -> dict:
    """The config's external experts (the key is absent from a YAML read without the schema's defaults)."""
    return config.get("experts", {})


def check_experts(config: dict, known_tasks: set[str]) -> None:
    """What the schema cannot say about `experts:`: one source each, a pinned hub id, a known task, a data file that
    exists, and (local folders) the adapter files, checked now so that a pickle or a missing file fails before any
    job starts."""
    for name, spec in experts(config).items():
        where = f"experts.{name}"
        if name in known_tasks:
            raise ConfigError(f"{where}: {name!r} is also a task of data/tasks; give the expert another name")
        if ("path" in spec) == ("hub" in spec):
            raise ConfigError(f"{where}: give exactly one of `path` (a local PEFT adapter folder) or `hub` (a hub id "
                              f"with `revision`)")
        if "hub" in spec and "revision" not in spec:
            raise ConfigError(f"{where}: hub adapter {spec['hub']!r} is not pinned; add `revision:` (a commit hash)")
        if "path" in spec and "revision" in spec:
            raise ConfigError(f"{where}: `revision` pins a hub id; a local folder has none, remove it")
        if "task" in spec and "data" in spec:
            raise ConfigError(f"{where}: give one training data source, `task` or `data`, not both")
        if "task" in spec and spec["task"] not in known_tasks:
            raise ConfigError(f"{where}.task: unknown task {spec['task']!r}; add data/tasks/{spec['task']}.yaml or "
                              f"give a jsonl file as `data:`")
        if "data" in spec:
            check_records(f"{where}.data", spec["data"])
        if "path" in spec:
            try:
                read_config(spec["path"])
            except AdapterError as err:
                raise ConfigError(f"{where}: {err}") from None


def check_records(where: str, path: str) -> None:
    """An expert's data file: jsonl records {id, input (the whole prompt), references (a list of answers)}."""
    fix = "give a jsonl file of training records {id, input, references} or a data/tasks task as `task:`"
    if not Path(path).is_file():
        raise ConfigError(f"{where}: no file {path!r}; {fix}")
    try:
        records = io.read_jsonl(path)
    except ValueError as err:
        raise ConfigError(f"{where}: {path} is not jsonl ({err}); {fix}") from None
    for n, record in enumerate(records, 1):
        if not (isinstance(record, dict) and {"id", "input", "references"} <= set(record)
                and isinstance(record["references"], list) and record["references"]):
            raise ConfigError(f"{where}: {path} line {n} is not a record {{id, input, references: [answers]}}")
    if not records:
        raise ConfigError(f"{where}: {path} holds no records; {fix}")


def composed(config: dict) -> dict[str, set[str]]:
    """variant -> the groups its compositions are built for: the tables', the masking table's and the figures'."""
    out: dict[str, set[str]] = {}
    for spec in [*config["tables"].values(), *config.get("figures", {}).values()]:
        for variant in spec["variants"]:
            out.setdefault(variant, set()).update(spec.get("groups", [spec.get("group")]))
    if config.get("masking"):
        for variant in config["masking"]["variants"]:
            out.setdefault(variant, set()).add(config["masking"]["group"])
    return out


def expert_ranks(config: dict, group: str) -> dict[str, int]:
    """LoRA name -> rank of a group's composed LoRAs, where known before any job: the config's recipe for the LoRAs
    trained here, adapter_config.json for a local expert (a hub expert's is checked when its job loads it)."""
    ranks = {}
    for name in lora_tasks(config, group):
        spec = experts(config).get(name)
        if spec is None:
            ranks[name] = config["lora"]["r"]
        elif "path" in spec:
            ranks[name] = read_config(spec["path"]).r
    return ranks


def check_compositions(config: dict) -> None:
    """A composition over external experts or scored on lm-eval tasks, before any job: its method must accept the
    LoRAs' ranks, a method that trains must find training data (`task` or `data`) for every expert, and lm-eval tasks
    need a method that neither rewrites prompts (lm-eval builds them) nor needs the task's own LoRA."""
    harness = lm_eval_tasks(config)
    for variant, groups in composed(config).items():
        if variant not in config["variants"]:
            continue  # the tables' and figures' own checks name it
        cls, options = methods.variant_method(config["variants"][variant], f"variants.{variant}")
        for group in sorted(g for g in groups if g in config["groups"] and g not in scaling_groups(config)):
            scored = [t for t in config["groups"][group] if t in harness]
            if scored and cls.prompts is not methods.Method.prompts:
                raise ConfigError(f"variants.{variant} ({cls.name}) rewrites prompts, and lm-eval builds the prompts "
                                  f"of {scored} (group {group}); use lm_eval.num_fewshot for few-shot prompts")
            if scored and per_task(config, variant) and cls.uses_experts:
                raise ConfigError(f"variants.{variant} ({cls.name}) scores each task with that task's own LoRA, and "
                                  f"lm-eval tasks {scored} (group {group}) have none; remove it from the group's "
                                  f"tables")
            if per_task(config, variant):
                continue  # a per-task composition is the task's own LoRA
            if cls.uses_experts and cls.equal_ranks(options):
                problem = rank_problem(f"variants.{variant} ({cls.name})", expert_ranks(config, group))
                if problem:
                    raise ConfigError(f"{problem} (group {group})")
            if not cls.trainable:
                continue
            for name in group_tasks(config, variant, group):
                spec = experts(config).get(name)
                if spec is not None and "task" not in spec and "data" not in spec:
                    raise ConfigError(f"experts.{name}: variants.{variant} ({cls.name}) trains on the data of the "
                                      f"LoRAs of group {group}, and expert {name!r} names none; add `task:` (a "
                                      f"data/tasks task) or `data:` (a jsonl file of {{id, input, references}}) to it")


def check_scaling(config: dict) -> None:
    """What the schema cannot say about `scaling:` (MoLE Table 6)."""
    cfg = config["scaling"]
    expand(config)  # an unknown group fails here with its message
    if "ramole" not in config:
        raise ConfigError("scaling: the composed LoRAs are drawn from the RAMoLE LoRA pool; add a `ramole:` section")
    sizes = cfg["sizes"]
    if any(b <= a for a, b in itertools.pairwise(sizes)):
        raise ConfigError(f"scaling.sizes must increase: {sizes}")
    if cfg["group"] in config.get("compose_from", {}):
        raise ConfigError(f"scaling.group: {cfg['group']!r} composes other tasks' LoRAs (compose_from); use a group "
                          "that composes its own")
    try:
        candidates = scaling_candidates(config)
    except (KeyError, ValueError) as err:
        raise ConfigError(f"scaling.extra_pool: {err}") from None
    own = len(config["groups"][cfg["group"]]) if cfg["own_loras"] else 0
    if sizes[0] < max(own, 1):
        raise ConfigError(f"scaling.sizes: {sizes[0]} LoRAs is fewer than the group's own {own} (own_loras), which "
                          "every composition holds")
    if sizes[-1] > len(candidates):
        raise ConfigError(f"scaling.sizes: {sizes[-1]} LoRAs, but the pool has only {len(candidates)} "
                          f"({own} own, {len(candidates) - own} from ramole.pool and scaling.extra_pool); add tasks "
                          "to scaling.extra_pool or lower the size")


def scaling_groups(config: dict) -> dict[str, int]:
    """The `scaling` section's groups, `{group}-n{size}` -> size (empty without one)."""
    cfg = config.get("scaling")
    return {f"{cfg['group']}-n{n}": n for n in cfg["sizes"]} if cfg else {}


def scaling_extra(config: dict) -> dict:
    """LoRA name -> task spec of `scaling.extra_pool`: pool LoRAs only Table 6 composes (RAMoLE's pool is unchanged),
    trained by the same rule and recipe as RAMoLE's pool LoRAs."""
    cfg = config.get("scaling")
    if not cfg or not cfg.get("extra_pool"):
        return {}
    return pool_tasks({"scaling": cfg["extra_pool"]}, config["ramole"]["eval"]["max_new_tokens"])


def scaling_candidates(config: dict) -> list[str]:
    """Every LoRA a scaling composition may use, in draw order: the group's own LoRAs first (`own_loras`), then the
    RAMoLE pool and `extra_pool` shuffled once with `scaling.seed`. A composition of N LoRAs takes the first N, so the
    compositions are nested (8 within 24 within 48 within 128), and lists them in a seeded order (`lora_tasks`)."""
    cfg = config["scaling"]
    own = list(config["groups"][cfg["group"]]) if cfg["own_loras"] else []
    extra = scaling_extra(config)
    pool = list(pool_tasks(config["ramole"]["pool"]))
    clash = sorted(set(pool) & set(extra))
    if clash:
        raise ValueError(f"{clash} are in ramole.pool already")
    others = [name for name in [*pool, *extra] if name not in own]
    random.Random(cfg["seed"]).shuffle(others)
    return own + others


def method_of(config: dict, variant: str):
    return methods.get(config["variants"][variant]["method"])


def task_data_config(config: dict, task: str) -> dict:
    """The data section a task's splits are made with: n_train and n_test None (whole splits) for the tasks of the
    `data.whole_splits` groups."""
    whole = any(task in config["groups"][g] for g in config["data"].get("whole_splits", []))
    return {**config["data"], "n_train": None, "n_test": None} if whole else config["data"]


def trained_variant(config: dict, variant: str) -> str:
    """The variant whose compose job trains this one's state: its `scored_from` (the same training, scored with other
    inference options, e.g. MoLE Table 5's layer ranges), else itself."""
    return config["variants"][variant].get("scored_from", variant)


def per_task(config: dict, variant: str) -> bool:
    """One composition per task (the single-task setting): the variant's `per_task`, else the method's default."""
    return config["variants"][trained_variant(config, variant)].get("per_task", method_of(config, variant).per_task)


def seeds_of(config: dict, variant: str, table: str | None = None) -> list[int]:
    """The table's `seeds` if it sets them (a slice whose seeds spread widely needs more to decide its claim), else
    the variant's own (to bound an expensive variant's cost), else the config's; an unseeded method runs once."""
    seeds = config["variants"][trained_variant(config, variant)].get("seeds", config["seeds"])
    if table is not None:
        seeds = config["tables"][table].get("seeds", seeds)
    return seeds if method_of(config, variant).seeded else seeds[:1]


def compositions(config: dict, variant: str, groups: list[str]) -> list[tuple[str, str]]:
    """(group, task) pairs a variant is scored on: a per-task method's group is the task itself (an lm-eval task has no
    LoRA of its own, so a per-task method that composes LoRAs skips it: the LoRA gain check's single-LoRA reference)."""
    single = per_task(config, variant)
    skipped = lm_eval_tasks(config) if single and method_of(config, variant).uses_experts else {}
    return [(task, task) if single else (group, task) for group in groups for task in config["groups"][group]
            if task not in skipped]


def evaluated_tasks(config: dict, variant: str, group: str) -> list[str]:
    return [group] if per_task(config, variant) else config["groups"][group]


def group_tasks(config: dict, variant: str, group: str) -> list[str]:
    """Tasks whose training data a composition is fitted on: the group's own, or those the config's `compose_from`
    names for it (a composition trained on one family and scored on another, MoLE Table 8)."""
    cls = method_of(config, variant)
    if not cls.uses_experts and not cls.trainable:
        return []
    return [group] if per_task(config, variant) else config.get("compose_from", {}).get(group, config["groups"][group])


def lora_tasks(config: dict, group: str) -> list[str]:
    """Names of the LoRAs a group's compositions use: its tasks', `compose_from`'s, or a `scaling` group's N."""
    size = scaling_groups(config).get(group)
    if size is not None:  # the first N of the draw, listed in a seeded order of their own: LoRAHub's search moves
        loras = scaling_candidates(config)[:size]  # weights in index order, so the own LoRAs must not lead
        random.Random(f"{config['scaling']['seed']}-n{size}").shuffle(loras)
        return loras
    return config.get("compose_from", {}).get(group, config["groups"][group])


def adapter_dirs(config: dict, variant: str, group: str, seed: int) -> list[str]:
    """The LoRA folders a composition loads: the per-task LoRAs of the training seed; for a `scaling` group, LoRAs of
    the pool recipe (one seed, `ramole.seed`): the group's own trained by `scaling_lora` on the group's training
    split, the others RAMoLE's pool LoRAs (`ramole_lora`)."""
    if not method_of(config, variant).uses_experts:
        return []
    res = config["results_dir"]
    if group not in scaling_groups(config):
        return [expert_dir(config, t) if t in experts(config) else f"{res}/adapters/{t}/seed{seed}"
                for t in lora_names(config, variant, group)]
    own = set(config["groups"][config["scaling"]["group"]]) if config["scaling"]["own_loras"] else set()
    pool_seed = config["ramole"]["seed"]
    return [f"{res}/{'scaling' if t in own else 'ramole'}/loras/{t}/seed{pool_seed}" for t in lora_tasks(config, group)]


def lm_eval_tasks(config: dict) -> dict:
    """lm-eval task name -> its `lm_eval.tasks` entry (empty without an `lm_eval:` section)."""
    return config.get("lm_eval", {}).get("tasks", {})


def task_spec(config: dict, task: str) -> TaskSpec:
    """A scored task's spec: its data/tasks file, or for an lm-eval task one made from its `lm_eval.tasks` entry."""
    entry = lm_eval_tasks(config).get(task)
    if entry is None:
        return load_task(task)
    return TaskSpec(name=task, family=entry["family"], source={"kind": "lm_eval"}, metrics=tuple(entry["metrics"]))


def scored_data(config: dict, tasks: list[str]) -> list[str]:
    """The data folders of the scored tasks that molebench scores itself (lm-eval reads its own data)."""
    return data_dirs(config, [t for t in tasks if t not in lm_eval_tasks(config)])


def lora_names(config: dict, variant: str, group: str) -> list[str]:
    """The names of the LoRAs `adapter_dirs` gives, in its order (the names a method's options and masks use)."""
    if not method_of(config, variant).uses_experts:
        return []
    return [group] if per_task(config, variant) else lora_tasks(config, group)


def expert_dir(config: dict, name: str) -> str:
    """An external expert's folder: its local path, or where the fetch_expert rule puts a hub adapter (one folder per
    pinned revision, so a new pin fetches anew)."""
    spec = experts(config)[name]
    return spec["path"] if "path" in spec else f"{config['results_dir']}/experts/{name}/{spec['revision']}"


def data_dirs(config: dict, tasks: list[str]) -> list[str]:
    """The training data of each task or expert: a task's data folder, or an expert's `task`'s or `data` file."""
    out = []
    for t in tasks:
        spec = experts(config).get(t, {"task": t})
        out.append(spec["data"] if "data" in spec else f"{config['results_dir']}/data/{spec['task']}")
    return out


def trained_group(config: dict, group: str) -> str:
    """The group whose compose job trains this group's compositions: a group that `compose_from` fits on exactly the
    tasks of another group (the same LoRAs and data, scored on other tasks: lm-eval's definitions of the same tasks,
    say) shares that group's training, else its own."""
    source = config.get("compose_from", {}).get(group)
    return next((g for g, tasks in config["groups"].items() if g != group and tasks == source), group)


def method_dir(config: dict, variant: str, group: str, seed: int) -> str | None:
    """The compose output a variant's evaluation loads: its trained state (a `scored_from` variant's source's, on the
    `trained_group`), or None for a method that trains nothing (built inside the evaluate job)."""
    if not method_of(config, variant).trainable:
        return None
    trained = f"{trained_variant(config, variant)}/{trained_group(config, group)}"
    return f"{config['results_dir']}/methods/{trained}/seed{seed}"


def scored_in_compose(config: dict, variant: str, group: str) -> bool:
    """A variant that trains its own state on this group is scored by the job that trained it (one process, one set
    of imports); a `scored_from` variant, a group that shares another's training and a method that trains nothing are
    scored by an evaluate job."""
    return (method_of(config, variant).trainable and trained_variant(config, variant) == variant
            and trained_group(config, group) == group)


def compose_wildcards(config: dict) -> dict[str, list[str]]:
    """The variants and groups whose metrics the compose rule makes (`scored_in_compose` is true exactly for their
    pairs, since one condition is on the variant and the other on the group); the evaluate rule makes the rest."""
    variants = [v for v in config["variants"]
                if method_of(config, v).trainable and trained_variant(config, v) == v]
    tasks = [t for tasks in config["groups"].values() for t in tasks]  # a per-task variant's group is its task
    groups = [g for g in [*config["groups"], *tasks] if trained_group(config, g) == g]
    return {"variant": variants, "group": list(dict.fromkeys(groups))}


def lm_eval_folder(config: dict, tasks: list[str]) -> list[str]:
    """The local lm-eval task folder, when the scored tasks include an lm-eval task (an edited YAML rescores it)."""
    harness = config.get("lm_eval", {})
    return [harness["include_path"]] if set(tasks) & set(lm_eval_tasks(config)) and "include_path" in harness else []


def scoring(config: dict, variant: str, group: str, seed: int, out: str, drop: list[str] | None = None) -> dict:
    """What one scoring of a variant on a group reads and writes (a job of an evaluate batch): its LoRAs (name ->
    folder), trained state, scored tasks with their data and lm-eval folders, output folder, and the LoRAs it drops
    (masking, MoLE Figure 8; None scores the whole composition)."""
    tasks = evaluated_tasks(config, variant, group)
    return {"variant": variant, "group": group, "seed": seed, "drop": drop, "out": out,
            "loras": dict(zip(lora_names(config, variant, group), adapter_dirs(config, variant, group, seed),
                              strict=True)),
            "method": method_dir(config, variant, group, seed), "tasks": tasks, "data": scored_data(config, tasks),
            "lm_eval": lm_eval_folder(config, tasks)}


def evaluate_batch(config: dict, variant: str, group: str, seed: int) -> str:
    """The evaluate batch that scores a variant on a group. A batch holds the scorings of a group and seed that read
    the same upstream outputs, so that a target pulls in no training it does not need: `{group}-seed{s}` the
    compositions of the group's LoRAs that train nothing, `{group}-{trained}-seed{s}` those that read `trained`'s
    state (a `scored_from` variant, a group sharing another's training, masking). A per-task variant's group is a
    task: those of every task share `per-task-seed{s}` (no LoRA: zero-shot, few-shot) or `per-task-loras-seed{s}`."""
    cls = method_of(config, variant)
    name = PER_TASK_BATCH if per_task(config, variant) else group
    if cls.trainable:
        return f"{name}-{trained_variant(config, variant)}-seed{seed}"
    return f"{name}{'-loras' if per_task(config, variant) and cls.uses_experts else ''}-seed{seed}"


def evaluate_batches(config: dict) -> dict[str, list[dict]]:
    """Every scoring no compose job makes (`scored_in_compose`), the masked ones included, batched (`evaluate_batch`):
    batch name -> its scorings (`scoring`). One job scores a batch: start-up (imports) is most of a small scoring's
    time, and a batch's scorings read the same base model, LoRAs and data."""
    figures = [d for f, spec in config["figures"].items() if spec["kind"] not in FROM_TRAINING
               for dirs in figure_inputs(config, f).values() for d in dirs]
    batches: dict[str, list[dict]] = {}
    for path in dict.fromkeys([*all_evaluation_dirs(config), *figures]):
        variant, group, seed = parse_metrics_dir(path)
        if not scored_in_compose(config, variant, group):
            batches.setdefault(evaluate_batch(config, variant, group, seed), []).append(
                scoring(config, variant, group, seed, path))
    if spec := config.get("masking"):
        for variant in spec["variants"]:
            for seed in seeds_of(config, variant):
                batches.setdefault(evaluate_batch(config, variant, spec["group"], seed), []).extend(
                    scoring(config, variant, spec["group"], seed, masked_dir(config, variant, spec["group"], seed,
                                                                              [lora]), [lora])
                    for lora in lora_tasks(config, spec["group"]))
    return batches


def parse_metrics_dir(path: str) -> tuple[str, str, int]:
    """(variant, group, seed) of a `metrics/{variant}/{group}/seed{seed}` folder."""
    variant, group, seed = Path(path).parts[-3:]
    return variant, group, int(seed.removeprefix("seed"))


def masked_dir(config: dict, variant: str, group: str, seed: int, drop: list[str | int]) -> str:
    return f"{config['results_dir']}/masked/{variant}/{group}/seed{seed}/drop-{'+'.join(map(str, drop))}"


def evaluation_dirs(config: dict, variant: str, groups: list[str], table: str | None = None) -> list[str]:
    """One folder per (variant, group, seed) holds the scores of every task of the group (its compose job or an
    evaluate batch writes it: `scored_in_compose`); the seeds are the table's when it sets them (seeds_of)."""
    pairs = dict.fromkeys(g for g, _ in compositions(config, variant, groups))
    return [f"{config['results_dir']}/metrics/{variant}/{group}/seed{seed}"
            for group in pairs for seed in seeds_of(config, variant, table)]


def table_inputs(config: dict, table: str) -> list[str]:
    spec = config["tables"][table]
    return list(dict.fromkeys(d for v in spec["variants"] for d in evaluation_dirs(config, v, spec["groups"], table)))


def figure_inputs(config: dict, figure: str) -> dict[str, list[str]]:
    """variant -> the folders a figure reads: compose outputs (training logs) or evaluate outputs (gate weights)."""
    spec = config["figures"][figure]
    trained = spec["kind"] in FROM_TRAINING
    return {v: [method_dir(config, v, group, s) if trained else f"{config['results_dir']}/metrics/{v}/{group}/seed{s}"
                for group in dict.fromkeys(g for g, _ in compositions(config, v, [spec["group"]]))
                for s in seeds_of(config, v)]
            for v in spec["variants"]}


def masking_spec(config: dict) -> dict:
    """The config's `masking` entry as a table spec: one group `drop-{lora}` per LoRA of its group."""
    spec = config["masking"]
    return {**spec, "groups": [f"drop-{t}" for t in lora_tasks(config, spec["group"])]}


def masking_inputs(config: dict) -> list[str]:
    spec = config.get("masking")
    if not spec:
        return []
    return [masked_dir(config, v, spec["group"], s, [lora]) for v in spec["variants"] for s in seeds_of(config, v)
            for lora in lora_tasks(config, spec["group"])]


def used_groups(config: dict) -> list[str]:
    """Groups the tables score, a `scaling` group counted as the group whose tasks it scores."""
    scaled = {g: config["scaling"]["group"] for g in scaling_groups(config)}
    return list(dict.fromkeys(scaled.get(g, g) for t in config["tables"].values() for g in t["groups"]))


REFERENCES = ("zero_shot", "single_lora")  # the reference points of the LoRA gain check (Method.reference)


def gain_variants(config: dict) -> dict[str, str]:
    """reference -> the first variant whose method is that reference point."""
    found = {}
    for name, v in config["variants"].items():
        found.setdefault(methods.get(v["method"]).reference, name)
    return {r: found[r] for r in REFERENCES}


def gain_inputs(config: dict) -> list[str]:
    """Zero-shot and single-LoRA scores of every task a table relies on."""
    groups = used_groups(config)
    return list(dict.fromkeys(d for v in gain_variants(config).values() for d in evaluation_dirs(config, v, groups)))


# by top results folder; an external expert's local folder is made by no rule
LORA_RULES = {"adapters": "train_lora", "ramole": "ramole_lora", "scaling": "scaling_lora", "experts": "fetch_expert"}


def job_chains(config: dict) -> list[list[tuple[str, str]]]:
    """Every dependency chain from the base model to the job that scores a composition, as (rule, benchmark job name)
    steps: the longest one by measured time is the DAG's critical path (the site shows it)."""
    chains = []
    for path in all_evaluation_dirs(config):
        variant, group, seed = parse_metrics_dir(path)
        if scored_in_compose(config, variant, group):
            tail = [("compose", f"{variant}-{group}-seed{seed}")]
        else:
            tail = [("evaluate", evaluate_batch(config, variant, group, seed))]
            if method_of(config, variant).trainable:  # the compose job that trained the state it reads
                trained = f"{trained_variant(config, variant)}-{trained_group(config, group)}-seed{seed}"
                tail.insert(0, ("compose", trained))
        made = [d for d in adapter_dirs(config, variant, group, seed) if Path(d).is_relative_to(config["results_dir"])]
        lora_steps = [[(LORA_RULES[Path(d).relative_to(config["results_dir"]).parts[0]],
                        f"{Path(d).parent.name}-{Path(d).name}")] for d in made] or [[]]
        chains += [[("base_model", "base"), *steps, *tail] for steps in lora_steps]
    return chains


def all_evaluation_dirs(config: dict) -> list[str]:
    return list(dict.fromkeys([d for t in config["tables"] for d in table_inputs(config, t)] + gain_inputs(config)))
