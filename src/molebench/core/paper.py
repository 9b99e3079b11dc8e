"""The papers' published numbers: data/paper/*.csv, one long-form table per paper table (data/paper/README.md)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PAPER_COLUMNS = ["table", "family", "paper_task", "metric", "method", "value"]
# Our scorer names and the labels the paper prints. `accuracy` (pick the most likely option) maps to the paper's EM:
# both are the share of examples answered correctly.
PAPER_METRIC = {"exact_match": "EM", "accuracy": "EM", "bleu": "BLEU", "rouge1": "Rouge-1", "rouge2": "Rouge-2",
                "rougeL": "Rouge-L"}


def load_paper(path: str | Path) -> pd.DataFrame:
    """A paper table in long form (data/paper/*.csv); a row may appear only once."""
    paper = pd.read_csv(path, dtype={"paper_task": str, "metric": str, "method": str})
    if list(paper.columns) != PAPER_COLUMNS:
        raise ValueError(f"{path}: columns must be {PAPER_COLUMNS}, got {list(paper.columns)}")
    dup = paper[paper.duplicated(["family", "paper_task", "metric", "method"], keep=False)]
    if not dup.empty:
        raise ValueError(f"{path}: duplicated rows\n{dup.to_string(index=False)}")
    return paper
