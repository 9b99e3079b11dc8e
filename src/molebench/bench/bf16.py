"""Does bf16 change the science? The per-task LoRAs of the gain-check tasks trained and scored in fp32 and in bf16
autocast, same seed, same data, compared example by example.

    molebench bench --bf16 [--tasks T ...] [--seeds 1 2 3] [--threads 1]       results/bench/bf16.json

For each task and seed: one LoRA with the config's per-task recipe (`lora`, `train`) trained with `autocast_bf16` off
and on, each scored on the task's test split in the same precision it was trained in. Reported per task: both scores
(mean over seeds), the paired interval of bf16 minus fp32 over the test examples and the seeds (the claims ledger's,
at its confidence: with one seed it cannot see the seed-to-seed spread, which a LoRA's score also has), the share of
examples whose score is the same, and the training and scoring time of each (CPU seconds of this process, summed
over seeds). bf16 leaves the science unchanged on a task when the interval contains 0 and the scores differ by at
most 1 point, or when the interval lies within the ledger's smallest effect (`claims.delta`).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from molebench.core.data import build_splits, load_task
from molebench.core.models import load_base
from molebench.core.scoring import evaluate
from molebench.core.training import TrainConfig, train_lora
from molebench.report import evidence

PRECISIONS = ("fp32", "bf16")


def run(base_dir: str | Path, config: dict, tasks: list[str], settings: evidence.Settings,
        seeds: tuple[int, ...] = (1, 2, 3)) -> list[dict]:
    rows = []
    data, ev = config["data"], config["eval"]
    for task in tasks:
        spec = load_task(task)
        splits, _ = build_splits(spec, data["n_train"], data["n_test"], data["split_seed"], data["raw_dir"])
        metric, scores, seconds = spec.metrics[0], [], {p: [0.0, 0.0] for p in PRECISIONS}
        for seed in seeds:
            for precision in PRECISIONS:
                bf16 = precision == "bf16"
                train_cfg = TrainConfig.from_dict({**config["train"], "autocast_bf16": bf16})
                model, tokenizer = load_base(base_dir)
                with tempfile.TemporaryDirectory() as tmp:
                    start = time.process_time()
                    train_lora(model, tokenizer, splits["train"], config["lora"], train_cfg, seed,
                               Path(tmp) / "lora", desc=f"lora {task} {precision} seed {seed}")
                    trained = time.process_time()
                    scored = evaluate(model.eval(), tokenizer, spec, splits["test"], ev["batch_size"],
                                      ev["max_input_tokens"], bf16=bf16)
                seconds[precision][0] += trained - start
                seconds[precision][1] += time.process_time() - trained
                scores += [{"variant": precision, "seed": seed, "task": task, "example": i,
                            "value": p["scores"][metric]} for i, p in enumerate(scored["predictions"])]  # 0-100
        tidy = pd.DataFrame(scores, columns=evidence.COLUMNS)
        iv = evidence.difference(tidy, "bf16", "fp32", untrained=(), settings=settings)
        fp32, bf16 = (tidy[tidy.variant == p].value.mean() for p in PRECISIONS)
        same = (iv.contains(0) and abs(bf16 - fp32) <= 1) or (-settings.delta <= iv.low and iv.high <= settings.delta)
        wide = tidy.pivot_table(index=["seed", "example"], columns="variant", values="value")
        rows.append({"task": task, "metric": metric, "n": int(wide.index.get_level_values("example").nunique()),
                     "seeds": len(seeds), "fp32": fp32, "bf16": bf16,
                     "difference": iv.estimate, "low": iv.low, "high": iv.high,
                     "same_examples": float((wide["bf16"] == wide["fp32"]).mean()), "unchanged": bool(same),
                     "train_s_fp32": seconds["fp32"][0], "train_s_bf16": seconds["bf16"][0],
                     "score_s_fp32": seconds["fp32"][1], "score_s_bf16": seconds["bf16"][1]})
        print(line(rows[-1]), flush=True)
    return rows


def line(row: dict) -> str:
    return (f"{row['task']:24s} fp32 {row['fp32']:6.1f}  bf16 {row['bf16']:6.1f}  bf16 - fp32 {row['difference']:+5.1f} "
            f"[{row['low']:+5.1f}, {row['high']:+5.1f}]  same examples {row['same_examples']:.0%}  "
            f"{'unchanged' if row['unchanged'] else 'CHANGED'}  train {row['train_s_fp32']:.0f} -> "
            f"{row['train_s_bf16']:.0f} CPU-s, score {row['score_s_fp32']:.0f} -> {row['score_s_bf16']:.0f} CPU-s")
