"""The NLP tables' model stages as plain functions: compose (fit a method over a group's LoRAs), evaluate (score a
composition on every task of its group) and masked evaluation (MoLE Figure 8). Paths come from the rules' declared
inputs and outputs; every output is written atomically and carries its provenance."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from molebench.core import harness, io
from molebench.core.accounting import cost
from molebench.core.adapters import save_lora
from molebench.core.composition import load_composition, save_trained
from molebench.core.data import load_task
from molebench.core.method import get as methods_get
from molebench.core.runtime import checkpoint_dir
from molebench.core.scoring import evaluate as score
from molebench.core.training import TrainConfig, Trainer, merge_train, seed_everything

# An evaluation folder's layout beyond its {task}.json metric files. Here rather than in molebench.nlp.plan, which
# every scoring job would then import with its figure registry (pandas, 0.3 s of each job's start-up)
GATES_SUFFIX = ".gates.json"  # the gate weights per task, beside the task's metric file
EXPORT_DIR = "adapter"  # the composition as a PEFT adapter folder, when it is one LoRA


def train_records(source: str) -> list[dict]:
    """Training records of a task's data folder (its train.jsonl) or of an expert's jsonl file."""
    path = Path(source)
    return io.read_jsonl(path if path.is_file() else path / "train.jsonl")


def _provenance(loras: dict[str, str]) -> dict:
    """The LoRAs in a run's provenance, as lists: the recorded config is key-sorted, and their order matters."""
    return {"adapters": list(loras.values()), "loras": list(loras)}


def compose(variant_name: str, variant: dict, base_dir: str, loras: dict[str, str], data_dirs: list[str],
            train_cfg: dict, seed: int, out_dir: str) -> None:
    """Build a method over the group's LoRAs (name -> folder), fit it when it trains, and save its state."""
    seed_everything(seed)
    method, model, tokenizer, _ = load_composition(variant["method"], variant.get("options", {}), base_dir, loras)
    with io.atomic_path(out_dir) as tmp:
        tmp.mkdir()
        info = {}
        if method.trainable:
            records = [r for d in data_dirs for r in train_records(d)]
            trainer = Trainer(TrainConfig.from_dict(merge_train(train_cfg, variant.get("train"))), seed,
                              tmp / "train_log.jsonl", f"{variant_name} seed {seed}", checkpoint_dir(out_dir))
            info = method.fit(model, tokenizer, records, trainer)
        save_trained(method, model, loras, tmp)
        report = method.gate_report(model)
        if report is not None:
            io.write_json(tmp / "gates.json", report)
        io.write_json(tmp / "run.json", {"variant": variant_name, "train_info": info, "run_info": io.provenance(
            {"variant": variant, "train": train_cfg, **_provenance(loras)}, seed)})
    shutil.rmtree(checkpoint_dir(out_dir), ignore_errors=True)


def evaluate(variant_name: str, variant: dict, group: str, tasks: list[str], base_dir: str, loras: dict[str, str],
             method_dir: str | None, data_dirs: list[str], eval_cfg: dict, seed: int, out_dir: str,
             lm_eval: dict | None = None) -> None:
    """Build the composition once and score it on every task of its group: out_dir/{task}.json (+ predictions).
    Tasks of the config's `lm_eval` section are scored through lm-eval in one run, the others by molebench's scorers
    on their data folders (`data_dirs`, in order)."""
    seed_everything(seed)
    eval_cfg = {**eval_cfg, **variant.get("eval", {})}
    method, model, tokenizer, base_params = load_composition(variant["method"], variant.get("options", {}), base_dir,
                                                             loras)
    trained = 0
    if method_dir:
        method.load(model, method_dir)
        trained = io.read_json(Path(method_dir) / "run.json")["train_info"]["trainable_params"]
    costs = cost(model, base_params, trained)
    harness_tasks = {t: lm_eval["tasks"][t] for t in tasks if t in (lm_eval or {}).get("tasks", {})}
    own = [t for t in tasks if t not in harness_tasks]
    with io.atomic_path(out_dir) as tmp:
        tmp.mkdir()
        if method.lora is not None:  # a composition that is one LoRA leaves as a standard PEFT adapter folder
            save_lora(method.lora, base_dir, tmp / EXPORT_DIR)

        def write(task: str, family: str, result: dict, start: float) -> None:
            io.write_jsonl(tmp / f"{task}.predictions.jsonl", result.pop("predictions"))
            io.write_json(tmp / f"{task}.json", {
                "variant": variant_name, "method": variant["method"], "group": group, "task": task,
                "family": family, "seed": seed, **result, "cost": costs, "seconds": round(time.time() - start, 2),
                "run_info": io.provenance({"variant": variant, "eval": eval_cfg, **_provenance(loras),
                                           "lm_eval": lm_eval if task in harness_tasks else None}, seed)})

        if harness_tasks:
            start = time.time()
            results = harness.score(model, tokenizer, {t: e["metrics"] for t, e in harness_tasks.items()},
                                    lm_eval.get("include_path"), lm_eval["registry"], eval_cfg["batch_size"],
                                    lm_eval.get("num_fewshot"), lm_eval.get("limit"))
            for task, entry in harness_tasks.items():
                write(task, entry["family"], results[task], start)
        for task, data_dir in zip(own, data_dirs, strict=True):
            start = time.time()
            spec = load_task(task)
            records = method.prompts(io.read_jsonl(Path(data_dir) / "test.jsonl"),
                                     io.read_jsonl(Path(data_dir) / "train.jsonl"), seed)
            result = score(model, tokenizer, spec, records, eval_cfg["batch_size"], eval_cfg["max_input_tokens"],
                           eval_cfg.get("bf16", False), eval_cfg.get("mc_scoring", "loglikelihood"))
            report = method.gate_report(model)
            if report is not None:  # gate weights at inference on this task (MoLE Figure 7)
                io.write_json(tmp / f"{task}{GATES_SUFFIX}", report)
            write(task, spec.family, result, start)


def masked_evaluate(variant_name: str, variant: dict, drop: list[str | int], tasks: list[str], base_dir: str,
                    loras: dict[str, str], method_dir: str | None, data_dirs: list[str], eval_cfg: dict, seed: int,
                    out_dir: str, lm_eval: dict | None = None) -> None:
    """Score a composition without the LoRAs in `drop` (MoLE Figure 8), into metric files whose group is
    `drop-{names}` (a LoRA named or counted from 0). A method that can mask (MoLE) keeps its trained state and masks them at inference; an untrained
    one (NLA) is composed from the remaining LoRAs. Nothing is retrained."""
    cls = methods_get(variant["method"])
    if cls.can_mask:
        variant = {**variant, "options": {**variant.get("options", {}), "mask": drop}}
    elif cls.trainable:
        raise ValueError(f"{variant_name}: a trained method that cannot mask LoRAs cannot drop them unretrained")
    else:
        loras = {name: d for i, (name, d) in enumerate(loras.items()) if name not in drop and i not in drop}
    evaluate(variant_name, variant, f"drop-{'+'.join(map(str, drop))}", tasks, base_dir, loras, method_dir, data_dirs,
             eval_cfg, seed, out_dir, lm_eval)


def run_scoring(scoring: dict, variant: dict, base_dir: str, eval_cfg: dict, lm_eval: dict | None = None) -> None:
    """One scoring of an evaluate batch (`plan.scoring`): the whole composition, or without its `drop` LoRAs."""
    args = (scoring["tasks"], base_dir, scoring["loras"], scoring["method"], scoring["data"], eval_cfg,
            scoring["seed"], scoring["out"], lm_eval)
    if scoring["drop"]:
        masked_evaluate(scoring["variant"], variant, scoring["drop"], *args)
    else:
        evaluate(scoring["variant"], variant, scoring["group"], *args)
