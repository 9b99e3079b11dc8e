"""Tables as data: tidy metric rows, the paper's tables rebuilt from our runs, and the single-LoRA gain check.

Inputs are the evaluate rule's metric files, results/metrics/{variant}/{group}/{task}/seed{seed}.json.

`build_table` returns one wide DataFrame per entry of the config's `tables:`. Its CSV has these columns:

    group, family, task, paper_task, metric, kind   row keys; kind is "task" or "average"
    {variant}:mean, {variant}:std, {variant}:n_seeds
                                                    one triple per variant, in spec order; std is the sample standard
                                                    deviation over seeds (ddof=1, NaN with a single seed)
    paper:{Method}                                  the paper's published value for the row, one column per method
                                                    as the paper names it; NaN where the paper has no such row

Rows follow spec["groups"] and each group's task order. A task gets one row per metric, in the task's metric order,
and each group ends with one "average" row (task and metric "average"). The average row averages, per seed, over the
group's task rows, then takes the mean and std of those per-seed averages over seeds. A task row gets the paper's
value when the task's paper_task (case ignored) and the metric match a paper row. The average row gets the paper's
"Average" row for the group's family, or the row spec["paper_rows"] names for the group (MoLE Table 6: "8 LoRAs").
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from molebench.data import TaskSpec

METRICS_FILE = "results/metrics/{variant}/{group}/{task}/seed{seed}.json"
METRIC_COLUMNS = ["variant", "method", "group", "family", "task", "seed", "metric", "value"]
PAPER_COLUMNS = ["table", "family", "paper_task", "metric", "method", "value"]
# Our scorer names and the labels the paper prints. `accuracy` (pick the most likely option) maps to the paper's EM:
# both are the share of examples answered correctly.
PAPER_METRIC = {"exact_match": "EM", "accuracy": "EM", "bleu": "BLEU", "rouge1": "Rouge-1", "rouge2": "Rouge-2",
                "rougeL": "Rouge-L"}
MIN_SEEDS = 3


def load_metrics(paths: list[str]) -> pd.DataFrame:
    """Read metric files into tidy rows: variant, method, group, family, task, seed, metric, value."""
    rows = []
    for path in paths:
        rec = json.loads(Path(path).read_text())
        missing = {"variant", "method", "group", "family", "task", "seed", "metrics"} - set(rec)
        if missing:
            raise ValueError(f"{path}: metric file lacks {sorted(missing)}")
        for metric, value in rec["metrics"].items():
            rows.append({**{k: rec[k] for k in METRIC_COLUMNS[:6]}, "metric": metric, "value": float(value)})
    df = pd.DataFrame(rows, columns=METRIC_COLUMNS).astype({"seed": int, "value": float})
    # two files for one run would be averaged as if they were two seeds
    dup = df[df.duplicated(["variant", "group", "task", "seed", "metric"], keep=False)]
    if not dup.empty:
        raise ValueError(f"metric files repeat a (variant, group, task, seed):\n{dup.to_string(index=False)}")
    return df


def load_paper(path: str | Path) -> pd.DataFrame:
    """A paper table in long form (data/paper/*.csv); a row may appear only once."""
    paper = pd.read_csv(path, dtype={"paper_task": str, "metric": str, "method": str})
    if list(paper.columns) != PAPER_COLUMNS:
        raise ValueError(f"{path}: columns must be {PAPER_COLUMNS}, got {list(paper.columns)}")
    dup = paper[paper.duplicated(["family", "paper_task", "metric", "method"], keep=False)]
    if not dup.empty:
        raise ValueError(f"{path}: duplicated rows\n{dup.to_string(index=False)}")
    return paper


def build_table(name: str, spec: dict, metrics: pd.DataFrame, tasks: dict[str, TaskSpec] | None,
                groups: dict[str, list[str]], seeds: dict[str, list[int]]) -> pd.DataFrame:
    """One paper table from our runs (layout in the module docstring).

    groups maps a group to its tasks (config `groups:`). seeds maps each variant to the seeds its metric files must
    cover (the config seeds, or the single seed of an unseeded method). Missing files, or files missing a metric,
    raise FileNotFoundError naming them. Seeds outside seeds[variant] are ignored.
    """
    variants = list(spec["variants"])
    unknown = [v for v in variants if v not in seeds]
    if unknown:
        raise KeyError(f"table {name}: no seeds given for variant(s) {unknown}")
    keys = pd.DataFrame(_row_keys(spec["groups"], groups, tasks, metrics, spec.get("paper_rows", {})),
                        columns=["group", "family", "task", "paper_task", "metric", "kind"])
    expected = pd.DataFrame([(v, s) for v in variants for s in seeds[v]], columns=["variant", "seed"])
    expected = keys.loc[keys.kind == "task", ["group", "task", "metric"]].merge(expected, how="cross")
    found = expected.merge(metrics[["variant", "group", "task", "seed", "metric", "value"]], how="left",
                           on=["variant", "group", "task", "seed", "metric"])
    _raise_missing(name, found, metrics)

    averages = found.groupby(["group", "variant", "seed"], as_index=False, sort=False)["value"].mean()
    averages[["task", "metric"]] = "average"
    cells = pd.concat([found, averages], ignore_index=True)
    stats = cells.groupby(["group", "task", "metric", "variant"], sort=False)["value"].agg(
        mean="mean", std="std", n_seeds="count")
    wide = stats.unstack("variant")
    wide.columns = [f"{variant}:{stat}" for stat, variant in wide.columns]
    columns = [f"{v}:{stat}" for v in variants for stat in ("mean", "std", "n_seeds")]
    table = keys.merge(wide[columns].reset_index(), how="left", on=["group", "task", "metric"])
    if spec.get("paper"):
        table = _attach_paper(table, load_paper(spec["paper"]))
    return table


def _row_keys(table_groups: list[str], groups: dict[str, list[str]], tasks: dict[str, TaskSpec] | None,
              metrics: pd.DataFrame, paper_rows: dict[str, str]) -> list[tuple]:
    """(group, family, task, paper_task, metric, kind) for every task row and one average row per group; the average
    row's paper_task is "Average" unless paper_rows names another paper row for the group."""
    rows = []
    for group in table_groups:
        if group not in groups:
            raise KeyError(f"group {group!r} is not in the config's groups: {sorted(groups)}")
        families = set()
        for task in groups[group]:
            if tasks is not None and task not in tasks:
                raise KeyError(f"group {group!r}: no TaskSpec given for task {task!r}")
            seen = metrics[metrics.task == task]
            if tasks is not None:
                family, paper_task, names = tasks[task].family, tasks[task].paper_task, list(tasks[task].metrics)
            else:  # without task specs, fall back to what the metric files say; no paper_task is known
                family = seen.family.iloc[0] if len(seen) else ""
                paper_task, names = "", list(dict.fromkeys(seen.metric))
            if not names:
                raise FileNotFoundError(f"no metric files for task {task!r}, so its metrics are unknown; expected "
                                        f"files like {METRICS_FILE.format(variant='*', group=group, task=task, seed='*')}")
            families.add(family)
            rows += [(group, family, task, paper_task, metric, "task") for metric in names]
        # a group mixing families has no single paper average to compare with
        rows.append((group, families.pop() if len(families) == 1 else "", "average", paper_rows.get(group, "Average"),
                     "average", "average"))
    return rows


def _raise_missing(name: str, found: pd.DataFrame, metrics: pd.DataFrame) -> None:
    """Name every missing metric file, and every file that lacks a metric a table row needs."""
    gaps = found[found.value.isna()]
    if gaps.empty:
        return
    present = set(metrics[["variant", "group", "task", "seed"]].itertuples(index=False, name=None))
    missing_files, missing_metrics = [], []
    for gap in gaps.itertuples():
        path = METRICS_FILE.format(variant=gap.variant, group=gap.group, task=gap.task, seed=gap.seed)
        if (gap.variant, gap.group, gap.task, gap.seed) in present:
            missing_metrics.append(f"{path} (no {gap.metric!r})")
        elif path not in missing_files:
            missing_files.append(path)
    lines = [f"table {name}: {len(missing_files)} metric file(s) missing, {len(missing_metrics)} metric(s) absent"]
    lines += [f"  missing: {p}" for p in missing_files] + [f"  incomplete: {p}" for p in missing_metrics]
    raise FileNotFoundError("\n".join(lines))


def _attach_paper(table: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Add paper:{Method} columns: task rows match on paper_task and metric, average rows on family and paper_task
    (the family's "Average", or the paper row `paper_rows` names)."""
    is_avg = paper.paper_task == "Average"
    by_task = {(r.paper_task.casefold(), r.metric, r.method): r.value for r in paper[~is_avg].itertuples()}
    by_family = {(r.family, r.paper_task.casefold(), r.method): r.value for r in paper.itertuples()}
    table = table.copy()
    for method in dict.fromkeys(paper.method):
        values = []
        for row in table.itertuples():
            if row.kind == "average":
                values.append(by_family.get((row.family, row.paper_task.casefold(), method)))
            else:
                values.append(by_task.get((row.paper_task.casefold(), PAPER_METRIC.get(row.metric), method)))
        table[f"paper:{method}"] = pd.Series(values, index=table.index, dtype=float)
    return table


def lora_gain_table(metrics: pd.DataFrame, groups: dict[str, list[str]], tasks: dict[str, TaskSpec] | None = None,
                    zero_shot: str = "zero-shot", single: str = "single") -> pd.DataFrame:
    """Per (group, task): does the task's single LoRA beat the base model zero-shot by more than the seed noise?

    The primary metric is the task's first metric (from `tasks`, else the first in its metric files). A task is
    valid when it has at least 3 single-LoRA seeds and gain = single_mean - zero_shot > 2 * single_std. Raises
    FileNotFoundError naming the (variant, group, task) cells with no file for the primary metric.
    """
    rows, missing = [], []
    for group, names in groups.items():
        for task in names:
            cell = metrics[(metrics.group == group) & (metrics.task == task)]
            metric = tasks[task].metrics[0] if tasks is not None else (cell.metric.iloc[0] if len(cell) else None)
            zs = cell[(cell.variant == zero_shot) & (cell.metric == metric)].value
            sl = cell[(cell.variant == single) & (cell.metric == metric)].value
            for variant, values in ((zero_shot, zs), (single, sl)):
                if values.empty:
                    missing.append(METRICS_FILE.format(variant=variant, group=group, task=task, seed="*"))
            if zs.empty or sl.empty:
                continue
            mean, std, n = sl.mean(), sl.std(), len(sl)
            gain = mean - zs.mean()
            if n < MIN_SEEDS:
                valid, reason = False, f"fewer than {MIN_SEEDS} seeds"
            elif gain > 2 * std:
                valid, reason = True, f"gain {gain:.2f} > 2 x std {std:.2f}"
            else:
                valid, reason = False, f"gain {gain:.2f} <= 2 x std {std:.2f}"
            rows.append({"group": group, "family": cell.family.iloc[0], "task": task, "metric": metric,
                         "zero_shot": zs.mean(), "single_mean": mean, "single_std": std, "n_seeds": n,
                         "gain": gain, "valid": valid, "reason": reason})
    if missing:
        raise FileNotFoundError("lora gain: no primary-metric scores in metric files matching:\n  "
                                + "\n  ".join(missing))
    return pd.DataFrame(rows, columns=["group", "family", "task", "metric", "zero_shot", "single_mean", "single_std",
                                       "n_seeds", "gain", "valid", "reason"])


# ---- RAMoLE (issue 6) ------------------------------------------------------------------------------------------

# The paper's method names in its mixed-task tables -> our RAMoLE methods; a name not here keeps its printed spelling
RAMOLE_PAPER_METHODS = {"RAMoLE": "ramole", "Mixture": "mixture", "Fusion": "fusion", "Selection": "selection",
                        "Perfect Selection": "oracle"}


def ramole_retrieval_table(accuracy: dict[str, dict], seed: int) -> pd.DataFrame:
    """embedder -> the retrieve job's accuracy block: one row per (embedder, query tasks), accuracy columns; `seed`
    is the run's (config ramole.seed), so that tables of several seeds can be stacked and compared seed by seed."""
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
