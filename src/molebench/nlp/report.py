"""The NLP tables' report stages: tidy metric rows, the paper's tables rebuilt from our runs, the masking table, the
single-LoRA gain check and the figures.

Inputs are the evaluate rule's metric folders, results/metrics/{variant}/{group}/seed{seed}/{task}.json.

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

from molebench.core import io
from molebench.core.data import TaskSpec
from molebench.core.paper import PAPER_METRIC, load_paper
from molebench.nlp import plan
from molebench.nlp.figures import FIGURE_KINDS
from molebench.nlp.stages import GATES_SUFFIX

METRICS_FILE = "results/metrics/{variant}/{group}/{task}/seed{seed}.json"
METRIC_COLUMNS = ["variant", "method", "group", "family", "task", "seed", "metric", "value"]
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
    keys = pd.DataFrame(_row_keys(spec["groups"], groups, tasks, metrics, spec.get("paper_rows", {}),
                                  spec.get("paper_family")),
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
              metrics: pd.DataFrame, paper_rows: dict[str, str], paper_family: str | None = None) -> list[tuple]:
    """(group, family, task, paper_task, metric, kind) for every task row and one average row per group; the average
    row's paper_task is "Average" unless paper_rows names another paper row for the group, and its family the
    group's (when its tasks share one) unless paper_family names the paper's family the group stands in for."""
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
        family = paper_family or (families.pop() if len(families) == 1 else "")
        rows.append((group, family, "average", paper_rows.get(group, "Average"),
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


def lora_gain_table(metrics: pd.DataFrame, groups: dict[str, list[str]], tasks: dict[str, TaskSpec] | None,
                    zero_shot: str, single: str) -> pd.DataFrame:
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


# ---- stages: one function per report rule ---------------------------------------------------------------------

def metric_files(evaluation_dirs: list[str]) -> list[str]:
    return [str(p) for d in evaluation_dirs for p in sorted(Path(d).glob("*.json"))
            if not p.name.endswith(GATES_SUFFIX)]


def _tasks(config: dict, groups: dict) -> dict:
    return {t: plan.task_spec(config, t) for tasks in groups.values() for t in tasks}


def group_metrics(config: dict, evaluation_dirs: list[str], groups: list[str]) -> pd.DataFrame:
    """Tidy metric rows; a per-task method's rows (group = the task) are repeated under every table group of the task."""
    metrics = load_metrics(metric_files(evaluation_dirs))
    per_task = metrics.variant.map(lambda v: plan.per_task(config, v))
    parts = [metrics[~per_task]]
    for group in groups:
        rows = metrics[per_task & metrics.task.isin(config["groups"][group])].copy()
        parts.append(rows.assign(group=group))
    return pd.concat(parts, ignore_index=True)


def group_rows(config: dict, groups: list[str]) -> dict[str, list[tuple[str, str]]]:
    """group -> its (task, metric) rows, in the tables' order."""
    return {g: [(t, m) for t, spec in _tasks(config, {g: config["groups"][g]}).items() for m in spec.metrics]
            for g in groups}


def table(name: str, config: dict, evaluation_dirs: list[str], out_file: str) -> None:
    spec = config["tables"][name]
    seeds = {v: plan.seeds_of(config, v, name) for v in spec["variants"]}
    df = build_table(name, spec, group_metrics(config, evaluation_dirs, spec["groups"]),
                     _tasks(config, config["groups"]), config["groups"], seeds)
    io.write_text(out_file, df.to_csv(index=False))


def masking_table(config: dict, evaluation_dirs: list[str], out_file: str) -> None:
    """The masking table in the tables' layout: one row block per masked LoRA (group `drop-{lora}`)."""
    spec = plan.masking_spec(config)
    groups = {g: config["groups"][config["masking"]["group"]] for g in spec["groups"]}
    df = build_table("masking", spec, load_metrics(metric_files(evaluation_dirs)), _tasks(config, groups), groups,
                     {v: plan.seeds_of(config, v) for v in spec["variants"]})
    io.write_text(out_file, df.to_csv(index=False))


def lora_gain(config: dict, evaluation_dirs: list[str], out_file: str) -> None:
    # an lm-eval task has no LoRA of its own, so no gain to check
    used = {g: [t for t in config["groups"][g] if t not in plan.lm_eval_tasks(config)]
            for g in plan.used_groups(config)}
    used = {g: tasks for g, tasks in used.items() if tasks}
    references = plan.gain_variants(config)
    df = lora_gain_table(group_metrics(config, evaluation_dirs, list(used)), used, _tasks(config, used),
                         zero_shot=references["zero_shot"], single=references["single_lora"])
    io.write_text(out_file, df.to_csv(index=False))


def figure(name: str, config: dict, inputs: dict[str, list[str]], out_png: str, out_csv: str) -> None:
    """inputs: variant -> the folders the figure reads (plan.figure_inputs, the rule's declared inputs)."""
    spec = config["figures"][name]
    data, fig = FIGURE_KINDS[spec["kind"]](inputs)
    fig.suptitle(spec["title"], fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))  # room for the title above the panels' own titles
    io.write_text(out_csv, data.to_csv(index=False))
    with io.atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
