"""The pool's gain check: does each pool LoRA beat the base model on its own task, beyond the ledger's interval?

A composition of pool LoRAs (MoLE Table 6, RAMoLE) can only show something when the LoRAs teach something. Each pool
LoRA's training job scores its task's test split with and without it (gain.json, molebench.core.stages.train_lora);
this table gives every LoRA its paired interval over those test examples (one seed: the pool is trained once) and
the share that passes, which the site shows beside the tables that compose them.
"""

from __future__ import annotations

import pandas as pd

from molebench.core.io import read_json
from molebench.report import evidence
from molebench.report.evidence import Settings

COLUMNS = ["lora", "family", "metric", "n", "zero_shot", "lora_score", "gain", "low", "high", "passes"]


def pool_gain_table(gain_files: list[str], settings: Settings) -> pd.DataFrame:
    """One row per pool LoRA (metric points, as in gain.json): it passes when its gain's interval lies above 0."""
    rows = []
    for path in gain_files:
        rec = read_json(path)
        scores = pd.DataFrame([{"variant": variant, "seed": 0, "task": rec["task"], "example": i, "value": v}
                               for variant in ("zero_shot", "lora") for i, v in enumerate(rec[variant])],
                              columns=evidence.COLUMNS)
        iv = evidence.difference(scores, "lora", "zero_shot", untrained={"lora", "zero_shot"}, settings=settings)
        rows.append({"lora": rec["task"], "family": rec["family"], "metric": rec["metric"], "n": rec["n"],
                     "zero_shot": sum(rec["zero_shot"]) / rec["n"], "lora_score": sum(rec["lora"]) / rec["n"],
                     "gain": iv.estimate, "low": iv.low, "high": iv.high, "passes": iv.low > 0})
    return pd.DataFrame(rows, columns=COLUMNS)


def pass_share(table: pd.DataFrame) -> str:
    return f"{int(table.passes.sum())} of {len(table)} pool LoRAs pass ({table.passes.mean():.0%})" if len(
        table) else "no pool LoRAs"
