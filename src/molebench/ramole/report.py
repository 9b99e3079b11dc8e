"""RAMoLE's report: the retrieval table and the mixed-task IID and OOD tables, with the paper's numbers beside
ours where data/paper holds them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from molebench.core import io
from molebench.core.paper import PAPER_METRIC, load_paper
from molebench.ramole.plan import EMBEDDERS, SETTINGS

TABLE_TITLES = {
    "ramole_retrieval": "RAMoLE: LoraRetriever accuracy, IID and OOD, before and after instruction fine-tuning",
    "ramole_mixed_iid": "RAMoLE: mixed-task evaluation, IID (every task's own LoRA is in the pool)",
    "ramole_mixed_ood": "RAMoLE: mixed-task evaluation, OOD (each query's own LoRA removed from the pool)",
}
TABLE_NOTES = {
    "ramole_retrieval": "Share of test queries (%) whose retrieved LoRAs are right. IID: the query's own LoRA is the "
                        "top-1 / among the top-k of the whole pool. OOD: the query's own LoRA is removed, and a LoRA of "
                        "the query's domain counts as right. Rows split the queries by whether their task was among "
                        "the retriever's fine-tuning tasks (40% of the pool). seed: the run's (config ramole.seeds; the "
                        "pretrained embedder's rows are the same in every run).",
    "ramole_mixed_iid": "Mixed-task test set (every pool task's first test samples, shuffled together; each batch "
                        "mixes tasks and every sample composes its own retrieved LoRAs in one forward). Columns: "
                        "seed (the run's, config ramole.seeds; every run scores the same queries), then {method}:{metric}, exact match and ROUGE-L F1 in "
                        "%. Domain and overall averages are over tasks. oracle = each sample's own task LoRA. "
                        "paper:{method}:{metric}: the paper's published averages, where data/paper holds them.",
    "ramole_mixed_ood": "As the IID table, but each query's own LoRA is removed from the pool before retrieval, so "
                        "every LoRA a sample composes belongs to another task; the oracle does not apply.",
}

# The paper's method names in its mixed-task tables -> our RAMoLE methods; a name not here keeps its printed spelling
RAMOLE_PAPER_METHODS = {"RAMoLE": "ramole", "Mixture": "mixture", "Fusion": "fusion", "Selection": "selection",
                        "Perfect Selection": "oracle"}


def ramole_retrieval_table(accuracy: dict[str, dict], seed: int) -> pd.DataFrame:
    """embedder -> the retrieve job's accuracy block: one row per (embedder, query tasks), accuracy columns; `seed`
    is the run's (config ramole.seeds), so that the tables of its runs stack and compare seed by seed."""
    rows = [{"embedder": embedder, "query tasks": part, "seed": seed, **values}
            for embedder, parts in accuracy.items() for part, values in parts.items()]
    return pd.DataFrame(rows)


def ramole_mixed_table(results: dict[str, dict], seed: int, paper: str | Path | None = None) -> pd.DataFrame:
    """method -> the evaluate job's metrics.json. Rows: every task, then per-domain averages, then the average over
    tasks (domain `all`); a `seed` column (the run's), then one column per method and metric ({method}:{metric}).

    `paper`: data/paper/ramole_mixed_{iid,ood}.csv in the long layout of every paper CSV (PAPER_COLUMNS). Its
    `Average` rows fill paper:{method}:{metric} columns on the average row whose domain equals the row's `family`
    (`all`: the overall average), with the paper's method names mapped by RAMOLE_PAPER_METHODS and its metric labels
    by PAPER_METRIC (EM -> exact_match, Rouge-L -> rougeL); a label without a counterpart keeps its printed name."""
    methods = list(results)
    first = results[methods[0]]["tasks"]
    metrics = list(next(iter(first.values()))["metrics"])
    rows = [{"kind": "task", "domain": t["domain"], "task": task,
             **{f"{m}:{metric}": results[m]["tasks"][task]["metrics"][metric] for m in methods for metric in metrics}}
            for task, t in first.items()]
    df = pd.DataFrame(rows)
    values = [f"{m}:{metric}" for m in methods for metric in metrics]
    domains = df.groupby("domain", sort=False)[values].mean().reset_index()
    domains.insert(0, "kind", "domain average")
    domains.insert(2, "task", "average")
    overall = df[values].mean().to_frame().T.assign(kind="average", domain="all", task="average")
    out = pd.concat([df, domains, overall], ignore_index=True)[["kind", "domain", "task", *values]]
    out.insert(3, "seed", seed)
    if paper is not None and Path(paper).is_file():
        ours = {label: name for name, label in reversed(PAPER_METRIC.items())}  # EM -> exact_match, not accuracy
        published = load_paper(paper)
        for r in published[published.paper_task == "Average"].itertuples():
            column = f"paper:{RAMOLE_PAPER_METHODS.get(r.method, r.method)}:{ours.get(r.metric, r.metric)}"
            if column not in out:
                out[column] = float("nan")
            out.loc[(out.kind != "task") & (out.domain == r.family), column] = r.value
    return out


def tables(retrieval_files: dict[int, str], evaluation_dirs: dict[int, dict[str, str]], paper_dir: str | Path,
           out_files: dict[str, str]) -> None:
    """The retrieval table and the mixed-task IID and OOD tables (CSV), the runs' rows stacked seed by seed
    (`retrieval_files`: seed -> its retrieval.json; `evaluation_dirs`: seed -> method -> its evaluation folder), with
    the paper's numbers beside ours where `paper_dir`/ramole_mixed_{iid,ood}.csv hold them."""
    retrieval = pd.concat([ramole_retrieval_table({key: io.read_json(path)[key]["accuracy"] for key in EMBEDDERS},
                                                  seed) for seed, path in retrieval_files.items()], ignore_index=True)
    io.write_text(out_files["ramole_retrieval"], retrieval.to_csv(index=False))
    paper = Path(paper_dir)
    for setting in SETTINGS:
        runs = []
        for seed, dirs in evaluation_dirs.items():
            results = {m: io.read_json(Path(d) / f"{setting}.metrics.json") for m, d in dirs.items()
                       if (Path(d) / f"{setting}.metrics.json").is_file()}
            runs.append(ramole_mixed_table(results, seed, paper / f"ramole_mixed_{setting}.csv"))
        io.write_text(out_files[f"ramole_mixed_{setting}"], pd.concat(runs, ignore_index=True).to_csv(index=False))
