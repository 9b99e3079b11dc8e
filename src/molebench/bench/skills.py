"""Learnability of the skill world: one LoRA per sampled skill against zero-shot, on the mini base model.

    molebench bench --skills [--skills-sample 12 | --tasks SKILL ...] [--recipe pool|task] [--steps S] [--rank R]
                             [--n-train 64] [--n-test 40]                 results/bench/skills.json

For each skill of `skills.pool(n_skills)` (one per family in turn, so 11 or more span every family) this trains one
LoRA with RAMoLE's pool recipe (recipe "pool": the config's `ramole.lora`, `ramole.train`) or the per-task LoRA
recipe of the MoLE tables (recipe "task": the config's `lora`, `train`), `steps`/`rank` overriding either, on
`n_train` training examples of the skill task `skill_<name>`, and scores exact match on `n_test` test examples with
and without it (zero-shot: the base model alone, the same prompt: the input alone; scores are fractions, not
percent). Training time is CPU seconds of
this process (`time.process_time`), so run it with one thread for a per-core figure. A LoRA passes when its gain
over zero-shot is more than twice the binomial standard error of the difference.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from pathlib import Path

from peft import PeftModel

from molebench.core import skills
from molebench.core.data import build_splits, load_task
from molebench.core.models import load_base
from molebench.core.scoring import evaluate
from molebench.core.training import TrainConfig, merge_train, train_lora

RECIPES = ("pool", "task")


def gain_se(p_lora: float, p_zero: float, n: int) -> float:
    """Binomial standard error of the difference of two accuracies on n examples each."""
    return math.sqrt((p_lora * (1 - p_lora) + p_zero * (1 - p_zero)) / n)


def run(base_dir: str | Path, config: dict, names: list[str], n_train: int = 64, n_test: int = 40,
        recipe: str = "pool", steps: int | None = None, rank: int | None = None, seed: int = 1) -> list[dict]:
    """One row per skill of `names` (skills.pool(12), say): skill, family, zero_shot, lora, gain, se, passes,
    train_seconds."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    section = config["ramole"] if recipe == "pool" else config
    lora_cfg = dict(section["lora"])
    train_cfg = merge_train(section["train"], None if steps is None else {"steps": steps})
    if rank is not None:
        lora_cfg.update(r=rank, lora_alpha=2 * rank)
    eval_cfg = config["ramole"]["eval"]
    rows = []
    base, tokenizer = load_base(base_dir)
    for name in names:
        spec = load_task(skills.TASK_PREFIX + name)
        splits, _ = build_splits(spec, n_train, n_test, config["data"]["split_seed"], config["data"]["raw_dir"])
        zero = evaluate(base, tokenizer, spec, splits["test"], eval_cfg["batch_size"], eval_cfg["max_input_tokens"])
        with tempfile.TemporaryDirectory() as tmp:
            model, _ = load_base(base_dir)
            start = time.process_time()
            train_lora(model, tokenizer, splits["train"], lora_cfg, TrainConfig.from_dict(train_cfg), seed,
                       Path(tmp) / "lora", desc=f"lora {name}")
            seconds = time.process_time() - start
            fresh, _ = load_base(base_dir)
            tuned = PeftModel.from_pretrained(fresh, Path(tmp) / "lora").eval()
            scored = evaluate(tuned, tokenizer, spec, splits["test"], eval_cfg["batch_size"],
                              eval_cfg["max_input_tokens"])
        p_zero, p_lora = zero["metrics"]["exact_match"] / 100, scored["metrics"]["exact_match"] / 100
        se = gain_se(p_lora, p_zero, n_test)
        rows.append({"skill": name, "family": spec.family, "zero_shot": p_zero, "lora": p_lora,
                     "gain": round(p_lora - p_zero, 4), "se": round(se, 4), "passes": p_lora - p_zero > 2 * se,
                     "train_seconds": round(seconds, 1)})
        print(_line(rows[-1]), flush=True)
    return rows


def summary(rows: list[dict]) -> dict:
    return {"skills": len(rows), "pass_share": round(sum(r["passes"] for r in rows) / len(rows), 3),
            "median_train_seconds": statistics.median(r["train_seconds"] for r in rows),
            "families": len({r["family"] for r in rows})}


def _line(row: dict) -> str:
    return (f"{row['skill']:24s} {row['family']:9s} zero-shot {row['zero_shot']:5.3f}  lora {row['lora']:5.3f}  "
            f"gain {row['gain']:+.3f} (2se {2 * row['se']:.3f}) {'pass' if row['passes'] else 'FAIL'}  "
            f"train {row['train_seconds']:6.1f} CPU-s")
