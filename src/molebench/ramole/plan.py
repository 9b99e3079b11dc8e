"""RAMoLE's plan: the LoRA pool of the config's `ramole:` block, what the schema cannot check about it, and the
(method, setting) runs of the mixed-task evaluation."""

from __future__ import annotations

import re
from pathlib import Path

from molebench.core import method as methods
from molebench.core.data import TaskSpec, pool_tasks
from molebench.core.errors import ConfigError
from molebench.methods.ramole import Retrieved

SETTINGS = ("iid", "ood")
MIXED_METRICS = ("exact_match", "rougeL")
EMBEDDERS = ("pretrained", "finetuned")


def pool(config: dict) -> dict[str, TaskSpec]:
    cfg = config["ramole"]
    return pool_tasks(cfg["pool"], cfg["eval"]["max_new_tokens"])


def run_dirs(config: dict, results: str) -> dict[int, str]:
    """Seed -> the folder of that run above the pool: its fine-tuned retriever, embeddings, retrieval, router and
    evaluations. The pool's LoRAs and data are shared by every run (one library, trained once with `ramole.seed`)."""
    return {s: f"{results}/ramole/seed{s}" for s in config["ramole"]["seeds"]}


def seed_of(path: str) -> int:
    """The run seed of a path under one of run_dirs' folders."""
    found = [int(part[4:]) for part in Path(path).parts if re.fullmatch(r"seed\d+", part)]
    if not found:
        raise ValueError(f"{path}: not under a RAMoLE run folder (.../ramole/seed<N>/...)")
    return found[-1]


def pool_gain_file(results: str) -> str:
    """Every pool LoRA's gain over the base model on its own task, gathered in one CSV."""
    return f"{results}/tables/pool_gain.csv"


def gain_eval(config: dict) -> dict:
    """The evaluation settings a pool LoRA's gain check reads (molebench.core.stages.train_lora scores it in its
    training job). Only these go to the job, so that an edited mixed-task evaluation (`per_task`, `max_new_tokens`)
    retrains no LoRA: Snakemake reruns a job whose params changed."""
    return {key: config["ramole"]["eval"][key] for key in ("batch_size", "max_input_tokens")}


def check(config: dict) -> None:
    """What the schema cannot say about the `ramole:` block, with messages that name the fix."""
    from peft import LoraConfig  # heavy (3 s): only the config check needs it, not the table and ledger jobs

    cfg = config["ramole"]
    try:
        LoraConfig(**cfg["lora"])
    except (TypeError, ValueError) as err:
        raise ConfigError(f"ramole.lora: not a valid PEFT LoraConfig: {err}") from None
    try:
        specs = pool(config)
    except (KeyError, ValueError) as err:
        raise ConfigError(f"ramole.pool: {err}") from None
    k = cfg["retriever"]["top_k"]
    if len(specs) < k + 1:
        raise ConfigError(f"ramole.pool has {len(specs)} LoRAs; OOD top-{k} retrieval needs at least {k + 1}")
    unknown = [t for t in cfg["retriever"]["finetune_tasks"] if t not in specs]
    if unknown:
        raise ConfigError(f"ramole.retriever.finetune_tasks: {unknown} are not LoRAs of ramole.pool "
                          f"({', '.join(specs)})")
    for name, entry in cfg["methods"].items():
        try:
            cls = methods.get(name)
        except KeyError as err:
            raise ConfigError(f"ramole.methods: {err.args[0]}") from None
        if not issubclass(cls, Retrieved):
            raise ConfigError(f"ramole.methods: {name!r} does not compose retrieved LoRAs; use ramole, mixture, "
                              f"fusion, selection or oracle")
        try:
            cls.config_class.from_dict((entry or {}).get("options", {}))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"ramole.methods.{name}.options: {err}") from None


def evaluations(config: dict) -> list[tuple[str, str]]:
    """(method, setting) pairs: the oracle needs the query's own LoRA, so it has no OOD run."""
    return [(m, s) for m in config["ramole"]["methods"] for s in SETTINGS
            if not (s == "ood" and methods.get(m).own_lora)]


def trains_router(method: str) -> bool:
    """A method whose scoring reads its run's router (RAMoLE's RouterLoRA, the one trainable method of the pool)."""
    return methods.get(method).trainable


def job_chains(config: dict) -> list[list[tuple[str, str]]]:
    """Every dependency chain to a run's mixed-task scoring job, as (rule, benchmark job name) steps, as
    molebench.nlp.plan.job_chains gives the NLP DAG's: base model -> one pool LoRA -> the router -> the scoring, and
    the retriever's branch: fine-tuning -> embeddings -> retrieval -> the router -> the scoring (no router when no
    method trains one)."""
    cfg = config["ramole"]
    chains = []
    for seed in cfg["seeds"]:
        run = f"seed{seed}"
        tail = [*([("ramole_router", run)] if any(map(trains_router, cfg["methods"])) else []),
                ("ramole_evaluate", run)]
        chains += [[("base_model", "base"), ("ramole_lora", f"{task}-seed{cfg['seed']}"), *tail]
                   for task in pool(config)]
        chains.append([("ramole_retriever", run), ("ramole_embed", run), ("ramole_retrieve", run), *tail])
    return chains
