"""The claims ledger: each qualitative claim of the papers as a check over our results, with a verdict.

Claims are data (data/paper/claims.yaml): an id, the paper and its source (table or figure), the claim in words, and a
`check` naming a table or figure of the config and the variants it compares. Every check reduces to comparisons
"A is above B", each decided across seeds by one rule:

    Pair A's and B's scores seed by seed (a method that cannot depend on the seed ran once, and its one value pairs
    with every seed of the other). With fewer than 3 pairs there is not enough evidence. Otherwise the comparison
    holds when A is above B in every pair, fails when A is at or below B in every pair, and has not enough evidence
    when the seeds disagree.

A claim holds when all its comparisons hold, fails when any fails, and otherwise has not enough evidence. A claim
whose table, figure or variants are not part of the config has not enough evidence at that scale, and says so.

RAMoLE's tables (ramole_retrieval, ramole_mixed_iid, ramole_mixed_ood; built outside `tables:` when the config has a
`ramole:` block) are read as CSVs, and a check on one names its `groups`: domains of the mixed tables (`all` is the
overall average) or query-task rows of the retrieval table. A variant there is a RAMoLE method (mixed tables) or an
embedder, `pretrained` or `finetuned` (retrieval table). Its score in a group is the mean over the row's metric
columns (exact match and ROUGE-L; the four retrieval accuracies), one per value of the tables' `seed` column. The
RAMoLE run has one seed (config ramole.seed), so its claims have not enough evidence until three seeds are stacked.

Text-to-image tables (config t2i.tables) are named `t2i:<table>` and a check on one names its `metrics` (CLIP
text_alignment, CLIP image_alignment, presence; each x 100). A score is, per seed, the mean over the table's
compositions of each composition's mean over its subjects; there is one group per metric, and for a per_size table
(MoLE Table 10) one per number of subjects and metric, read from the metric folders of molebench.t2i.

Check kinds (scores are a group's average over its tasks and metrics, as in the tables' average rows):
    above        `variant` above each of `others`, in every group of `table`
    decreasing   `variants` in falling order: each above the next, in every group of `table`
    middle_best  of `variants` ordered from finest to coarsest, an intermediate one is above both ends, in every
                 group of `table`; it fails when an end is above every intermediate one
    best_differs the best of `variants` (by mean, per task: the mean over the task's metrics) differs between two
                 tasks of a group, and each of the two is above the other on its own task; it fails when one
                 variant is best on every task and above every other variant there
    scaling      `table`'s groups are compositions of more and more LoRAs, in order (MoLE Table 6). Per seed,
                 `variant`'s margin over the best of `others` (the highest of their scores in that seed), averaged
                 over the later half of the groups, above that average over the first half (the lead grows); and
                 each of `variant` and `others` below, at the last group, its own best earlier group (the one with
                 the highest mean): every method declines at the largest size
    figure_above for `figure` (kind gate_entropy): `variant`'s mean `column` over the second half of training above
                 each of `others`'
    figure_below for a measured `figure` (a benchmark run once in the DAG, e.g. mixlora_efficiency): every row's
                 `columns` below `below`; each (row, column) is one comparison that holds or fails as measured
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from molebench.core import io
from molebench.nlp import plan
from molebench.nlp.report import MIN_SEEDS, group_metrics, group_rows
from molebench.ramole.plan import EMBEDDERS, evaluations
from molebench.t2i import plan as t2i_plan
from molebench.t2i.report import load_metrics as t2i_metrics

HOLDS, FAILS, UNDECIDED = "holds", "fails", "not enough evidence"
CLAIMS_FILE = io.resource("paper", "claims.yaml")
CHECK_KINDS = {"above": "table", "decreasing": "table", "middle_best": "table", "best_differs": "table",
               "scaling": "table", "figure_above": "figure", "figure_below": "figure"}
RAMOLE_TABLES = {"ramole_retrieval": "embedder", "ramole_mixed_iid": "method", "ramole_mixed_ood": "method"}
T2I_PREFIX = "t2i:"
T2I_METRICS = ("text_alignment", "image_alignment", "presence")
LEDGER_COLUMNS = ["id", "paper", "source", "claim", "verdict", "evidence", "page"]  # page: the site page of the evidence


def load_claims(path: str | Path = CLAIMS_FILE) -> list[dict]:
    claims = yaml.safe_load(Path(path).read_text())
    for claim in claims:
        missing = {"id", "paper", "source", "claim", "check"} - set(claim)
        if missing:
            raise ValueError(f"{path}: claim {claim.get('id', '?')!r} lacks {sorted(missing)}")
        kind = claim["check"].get("kind")
        if kind not in CHECK_KINDS:
            raise ValueError(f"{path}: claim {claim['id']!r} has check kind {kind!r}; kinds: {', '.join(CHECK_KINDS)}")
        if claim["check"].get("table") in RAMOLE_TABLES and not claim["check"].get("groups"):
            raise ValueError(f"{path}: claim {claim['id']!r} checks a RAMoLE table and must name its `groups`")
        if _is_t2i(claim["check"]) and not set(claim["check"].get("metrics") or ["?"]) <= set(T2I_METRICS):
            raise ValueError(f"{path}: claim {claim['id']!r} checks a text-to-image table and must name its `metrics` "
                             f"among {', '.join(T2I_METRICS)}")
    return claims


def _is_t2i(check: dict) -> bool:
    return str(check.get("table", "")).startswith(T2I_PREFIX)


def needed(claims: list[dict], config: dict) -> tuple[list[str], list[str]]:
    """The config's tables and figures the claims read (the others make their claims undecided)."""
    tables = [c["check"]["table"] for c in claims if CHECK_KINDS[c["check"]["kind"]] == "table"]
    figures = [c["check"]["figure"] for c in claims if CHECK_KINDS[c["check"]["kind"]] == "figure"]
    return ([t for t in dict.fromkeys(tables) if t in config["tables"]],
            [f for f in dict.fromkeys(figures) if f in config.get("figures", {})])


def needed_ramole(claims: list[dict], config: dict) -> list[str]:
    """The RAMoLE tables the claims read; none without a `ramole:` block (their claims are then not run)."""
    if "ramole" not in config:
        return []
    return list(dict.fromkeys(c["check"]["table"] for c in claims if c["check"].get("table") in RAMOLE_TABLES))


def needed_t2i(claims: list[dict], config: dict) -> bool:
    """Whether the claims read text-to-image results (never without a `t2i:` block)."""
    return "t2i" in config and any(_is_t2i(c["check"]) for c in claims)


def ramole_variants(table: str, config: dict) -> list[str]:
    if RAMOLE_TABLES[table] == "embedder":
        return list(EMBEDDERS)
    return [m for m, s in evaluations(config) if s == table.rsplit("_", 1)[1]]


def ramole_scores(table: str, data: pd.DataFrame) -> pd.DataFrame:
    """(variant, group, seed, value) from a RAMoLE table CSV: per row, the mean over the variant's metric columns."""
    if RAMOLE_TABLES[table] == "embedder":
        keys = ["embedder", "query tasks", "seed"]
        values = [c for c in data.columns if c not in keys and c != "queries"]
        out = data.assign(value=data[values].mean(axis=1)).rename(columns={"embedder": "variant",
                                                                           "query tasks": "group"})
        return out[["variant", "group", "seed", "value"]]
    rows = data[data.kind != "task"]
    methods = dict.fromkeys(c.split(":")[0] for c in data.columns if ":" in c and not c.startswith("paper:"))
    return pd.DataFrame([{"variant": m, "group": r["domain"], "seed": r["seed"],
                          "value": r[[c for c in data.columns if c.startswith(f"{m}:")]].mean()}
                         for m in methods for _, r in rows.iterrows()], columns=["variant", "group", "seed", "value"])


def t2i_groups(spec: dict, metrics: list[str]) -> list[str]:
    if spec["kind"] == "per_size":
        return [f"{size} subjects: {m}" for size in spec["sizes"] for m in metrics]
    return list(metrics)


def t2i_scores(spec: dict, metrics: list[str], data: pd.DataFrame) -> pd.DataFrame:
    """(variant, group, seed, value) from text-to-image metric rows (molebench.t2i.report.load_metrics: one per
    variant, composition, seed and subject) for the table `spec`, in t2i_groups order."""
    data = data[data["size"].isin(spec["sizes"])]
    by_size = spec["kind"] == "per_size"
    keys = ["variant", "seed", *(["size"] if by_size else [])]
    frames = []
    for metric in metrics:
        per_composition = data.groupby([*keys, "composition"], as_index=False)[metric].mean()
        means = per_composition.groupby(keys, as_index=False)[metric].mean()
        group = means["size"].astype(str) + f" subjects: {metric}" if by_size else metric
        frames.append(pd.DataFrame({"variant": means.variant, "group": group, "seed": means.seed,
                                    "value": 100 * means[metric]}))
    return pd.concat(frames, ignore_index=True)


def compare(above: pd.Series, below: pd.Series) -> tuple[str, str]:
    """The module's rule for "above is above below"; both are indexed by seed. Returns (verdict, evidence)."""
    if len(above) == 1 and len(below) > 1:
        above = pd.Series(above.iloc[0], index=below.index)
    if len(below) == 1 and len(above) > 1:
        below = pd.Series(below.iloc[0], index=above.index)
    diff = (above - below).dropna()
    text = f"{above.mean():.1f} vs {below.mean():.1f}, {int((diff > 0).sum())} of {len(diff)} seeds above"
    if len(diff) < MIN_SEEDS:
        return UNDECIDED, text + f" (fewer than {MIN_SEEDS} seeds)"
    if (diff > 0).all():
        return HOLDS, text
    if (diff <= 0).all():
        return FAILS, text
    return UNDECIDED, text


def combine(verdicts: list[str]) -> str:
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    return FAILS if FAILS in verdicts else UNDECIDED


def averages(metrics: pd.DataFrame, rows: dict[str, list[tuple[str, str]]], by: list[str]) -> pd.DataFrame:
    """Per (variant, group, seed, *by): the mean over the group's (task, metric) rows; by = [] gives the tables'
    average rows, by = ["task"] each task's mean over its metrics. `rows` maps a group to its (task, metric) pairs."""
    keys = pd.DataFrame([(g, t, m) for g, pairs in rows.items() for t, m in pairs], columns=["group", "task", "metric"])
    return metrics.merge(keys).groupby(["variant", "group", "seed", *by], as_index=False)["value"].mean()


def _series(scores: pd.DataFrame, variant: str, group: str, task: str | None = None) -> pd.Series:
    mine = scores[(scores.variant == variant) & (scores.group == group)]
    if task is not None:
        mine = mine[mine.task == task]
    if mine.empty:
        raise ValueError(f"no scores for variant {variant!r} in group {group!r}" + (f", task {task!r}" if task else ""))
    return mine.set_index("seed")["value"]


def _best_differs(variants: list[str], scores: pd.DataFrame, group: str) -> tuple[str, str, str]:
    """best_differs for one group; scores are per (variant, group, task, seed). The best per task is picked by mean
    (as middle_best picks its intermediate), then the crossing is decided by the module's rule."""
    tasks = list(dict.fromkeys(scores[scores.group == group].task))
    series = {(v, t): _series(scores, v, group, t) for v in variants for t in tasks}
    best = {t: max(variants, key=lambda v, t=t: series[v, t].mean()) for t in tasks}
    label = f"{group}: best per task " + ", ".join(f"{t} {v}" for t, v in best.items())
    for i, t1 in enumerate(tasks):
        for t2 in tasks[i + 1:]:
            a, b = best[t1], best[t2]
            if a == b:
                continue
            first, second = compare(series[a, t1], series[b, t1]), compare(series[b, t2], series[a, t2])
            if first[0] == second[0] == HOLDS:
                return label, HOLDS, f"{t1}: {a} > {b}, {first[1]}; {t2}: {b} > {a}, {second[1]}"
    winners = set(best.values())
    if len(winners) == 1:
        a = winners.pop()
        if all(compare(series[a, t], series[b, t])[0] == HOLDS for t in tasks for b in variants if b != a):
            return label, FAILS, f"{a} is above every other variant on every task in every seed"
    return label, UNDECIDED, "no two tasks prefer different variants in every seed"


def _per_seed(scores: pd.DataFrame, variants: list[str], group: str) -> pd.DataFrame:
    """seed x variant scores in one group; an unseeded method's one value is repeated over the others' seeds."""
    series = {v: _series(scores, v, group) for v in variants}
    seeds = sorted(set().union(*(s.index for s in series.values() if len(s) > 1))) or \
        sorted(set().union(*(s.index for s in series.values())))
    return pd.DataFrame({v: s.reindex(seeds) if len(s) > 1 else pd.Series(s.iloc[0], index=seeds)
                         for v, s in series.items()})


def _scaling_comparisons(check: dict, scores: pd.DataFrame, groups: list[str]) -> list[tuple[str, str, str]]:
    variant, others = check["variant"], check["others"]
    out = []
    half = len(groups) // 2
    if half:
        margin = {g: (f := _per_seed(scores, [variant, *others], g))[variant] - f[others].max(axis=1) for g in groups}
        small, large = groups[:half], groups[-half:]
        out.append((f"{variant}'s lead over the best of {', '.join(others)}: {'+'.join(large)} > {'+'.join(small)}",
                    *compare(sum(margin[g] for g in large) / half, sum(margin[g] for g in small) / half)))
    for v in [variant, *others] if len(groups) > 1 else []:
        best = max(groups[:-1], key=lambda g: _series(scores, v, g).mean())
        out.append((f"{v}: {best} > {groups[-1]}", *compare(_series(scores, v, best), _series(scores, v, groups[-1]))))
    return out


def _table_comparisons(check: dict, scores: pd.DataFrame, task_scores: pd.DataFrame | None,
                       groups: list[str]) -> list[tuple[str, str, str]]:
    """(label, verdict, evidence) per comparison the check makes."""
    if check["kind"] == "scaling":
        return _scaling_comparisons(check, scores, groups)
    out = []
    for group in groups:
        if check["kind"] == "best_differs":
            out.append(_best_differs(check["variants"], task_scores, group))
            continue

        def pair(a: str, b: str, group: str = group) -> tuple[str, str, str]:
            return (f"{group}: {a} > {b}", *compare(_series(scores, a, group), _series(scores, b, group)))

        if check["kind"] == "above":
            out += [pair(check["variant"], other) for other in check["others"]]
        elif check["kind"] == "decreasing":
            out += [pair(a, b) for a, b in zip(check["variants"], check["variants"][1:])]
        else:  # middle_best
            ends, middle = [check["variants"][0], check["variants"][-1]], check["variants"][1:-1]
            means = {v: _series(scores, v, group).mean() for v in middle}
            best = max(middle, key=means.get)
            best_vs_ends = [pair(best, end) for end in ends]
            verdict = combine([v for _, v, _ in best_vs_ends])
            if verdict != HOLDS:  # it fails only when an end is clearly above every intermediate variant
                end_wins = [combine([v for _, v, _ in (pair(end, m) for m in middle)]) for end in ends]
                verdict = FAILS if HOLDS in end_wins else UNDECIDED
            evidence = "; ".join(f"{label.split(': ')[1]}: {ev}" for label, _, ev in best_vs_ends)
            out.append((f"{group}: best intermediate {best} above both ends", verdict, evidence))
    return out


def _figure_comparisons(check: dict, data: pd.DataFrame) -> list[tuple[str, str, str]]:
    if check["kind"] == "figure_below":
        out = []
        for row in data.dropna(subset=check["columns"]).to_dict("records"):
            label = ", ".join(f"{k} {row[k]}" for k in check.get("row_keys", []))
            out += [(f"{label}: {c} < {check['below']}", HOLDS if row[c] < check["below"] else FAILS, f"{row[c]:.3g}")
                    for c in check["columns"]]
        return out
    late = data[data.step >= data.step.max() / 2]
    per_seed = late.groupby(["variant", "seed"])[check["column"]].mean()
    return [(f"{check['column']}: {check['variant']} > {other}",
             *compare(per_seed[check["variant"]], per_seed[other])) for other in check["others"]]


def _named(check: dict) -> list[str]:
    return [v for v in [check.get("variant"), *check.get("others", []), *check.get("variants", [])] if v]


def ledger(claims: list[dict], config: dict, metrics: pd.DataFrame, rows: dict[str, list[tuple[str, str]]],
           figure_data: dict[str, pd.DataFrame], ramole_data: dict[str, pd.DataFrame] | None = None,
           t2i_data: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ledger, comparisons): one row per claim with its verdict, and one row per comparison behind the verdicts.

    `metrics` are tidy metric rows (molebench.nlp.report.load_metrics) covering the tables the claims read, `rows` the
    (task, metric) rows of each group, `figure_data` a figure name -> its CSV's data, `ramole_data` a RAMoLE table
    name -> its CSV's data (needed_ramole), `t2i_data` the text-to-image metric rows (needed_t2i)."""
    scores, task_scores = averages(metrics, rows, []), averages(metrics, rows, ["task"])
    rows, details = [], []
    for claim in claims:
        check = claim["check"]
        source = check.get("table") or check.get("figure")
        if source in RAMOLE_TABLES:
            verdict, evidence, comparisons = _ramole_claim(check, source, config, ramole_data or {})
        elif _is_t2i(check):
            verdict, evidence, comparisons = _t2i_claim(check, source, config, t2i_data)
        else:
            spec = {**config["tables"], **config.get("figures", {})}.get(source)
            absent = [v for v in _named(check) if spec is not None and v not in spec["variants"]]
            if spec is None or absent:
                missing = f"{', '.join(absent)} in {source}" if spec is not None else source
                verdict, evidence, comparisons = UNDECIDED, f"not run at this scale: {missing}", []
            else:
                comparisons = (_figure_comparisons(check, figure_data[source])
                               if CHECK_KINDS[check["kind"]] == "figure"
                               else _table_comparisons(check, scores, task_scores, config["tables"][source]["groups"]))
                verdict, evidence = _counted(comparisons)
        page = f"t2i/{source[len(T2I_PREFIX):]}.html" if _is_t2i(check) else f"{source}.html"
        rows.append({**{k: claim[k] for k in LEDGER_COLUMNS[:4]}, "verdict": verdict, "evidence": evidence,
                     "page": page})
        details += [{"id": claim["id"], "comparison": label, "verdict": v, "evidence": ev}
                    for label, v, ev in comparisons]
    return (pd.DataFrame(rows, columns=LEDGER_COLUMNS),
            pd.DataFrame(details, columns=["id", "comparison", "verdict", "evidence"]))


def _ramole_claim(check: dict, table: str, config: dict, data: dict[str, pd.DataFrame]) -> tuple[str, str, list]:
    if "ramole" not in config:
        return UNDECIDED, f"not run at this scale: {table} (the config has no ramole: block)", []
    absent = [v for v in _named(check) if v not in ramole_variants(table, config)]
    if absent:
        return UNDECIDED, f"not run at this scale: {', '.join(absent)} in {table}", []
    comparisons = _table_comparisons(check, ramole_scores(table, data[table]), None, check["groups"])
    return *_counted(comparisons), comparisons


def _t2i_claim(check: dict, source: str, config: dict, data: pd.DataFrame | None) -> tuple[str, str, list]:
    spec = config.get("t2i", {}).get("tables", {}).get(source[len(T2I_PREFIX):])
    if spec is None:
        return UNDECIDED, f"not run at this scale: {source}", []
    absent = [v for v in _named(check) if v not in spec["columns"].values()]
    if absent:
        return UNDECIDED, f"not run at this scale: {', '.join(absent)} in {source}", []
    comparisons = _table_comparisons(check, t2i_scores(spec, check["metrics"], data), None,
                                     t2i_groups(spec, check["metrics"]))
    return *_counted(comparisons), comparisons


def _counted(comparisons: list[tuple[str, str, str]]) -> tuple[str, str]:
    """(the claim's verdict, its evidence line) from its comparisons."""
    verdict = combine([v for _, v, _ in comparisons])
    return verdict, f"{sum(v == HOLDS for _, v, _ in comparisons)} of {len(comparisons)} comparisons hold"


# ---- the claims rule ---------------------------------------------------------------------------------------------

def inputs(config: dict) -> tuple[list[str], list[str], list[str], list[str]]:
    """The evaluation folders, figure CSVs, RAMoLE table CSVs and text-to-image metric folders the ledger reads."""
    claims = load_claims()
    tables, figures = needed(claims, config)
    return (list(dict.fromkeys(d for t in tables for d in plan.table_inputs(config, t))),
            [f"{config['results_dir']}/figures/{f}.csv" for f in figures],
            [f"{config['results_dir']}/tables/{t}.csv" for t in needed_ramole(claims, config)],
            t2i_plan.evaluations(config["t2i"], config["results_dir"]) if needed_t2i(claims, config) else [])


def write_ledger(config: dict, evaluation_dirs: list[str], figure_csvs: dict[str, str], ramole_csvs: dict[str, str],
                 t2i_dirs: list[str], claims_file: str, out_ledger: str, out_comparisons: str) -> None:
    """The ledger and its comparisons as CSVs, from the inputs `inputs` lists (the claims rule's declared inputs)."""
    claimed = load_claims(claims_file)
    groups = list(dict.fromkeys(g for t in needed(claimed, config)[0] for g in config["tables"][t]["groups"]))
    verdicts, comparisons = ledger(claimed, config, group_metrics(config, evaluation_dirs, groups),
                                   group_rows(config, groups),
                                   {name: pd.read_csv(path) for name, path in figure_csvs.items()},
                                   {name: pd.read_csv(path) for name, path in ramole_csvs.items()},
                                   t2i_metrics(t2i_dirs) if t2i_dirs else None)
    io.write_text(out_comparisons, comparisons.to_csv(index=False))
    io.write_text(out_ledger, verdicts.to_csv(index=False))
