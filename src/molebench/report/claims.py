"""The claims ledger: each qualitative claim of the papers as a check over our results, with a verdict.

Claims are data (data/paper/claims.yaml): an id, the paper and its source (table or figure), the claim in words, and a
`check` naming a table or figure of the config, the variants it compares and its kind. The verdict rule, its intervals
and every check kind's test are molebench.report.evidence's (its module docstring states the rule); this module only
adapts each source's results to evidence's tidy per-example scores (variant, seed, task, example, value) and calls the
check the kind names. Settings come from the config's optional `claims:` section (confidence 0.95, delta 1.0 point,
min_seeds 2); a check may set its own `delta` in its own unit (nats of gate entropy, a fraction of a timing).

Sources and their adapters:
    NLP tables    (config `tables:`; nlp_scores) every evaluation folder's {task}.predictions.jsonl, whose rows carry
                  each test example's score per metric (molebench.core.scoring.EXAMPLE_SCORERS); an example's value
                  is the mean over the task's metrics. A per-task method (group = the task) is repeated under every
                  table group holding the task. Variants whose method is not `seeded` (zero-shot) are untrained:
                  their one run pairs with every seed of the others.
    RAMoLE        (a `ramole:` block; ramole_scores) ramole_mixed_iid / ramole_mixed_ood: each mixed-task sample's
                  prediction scored with exact match and ROUGE-L (their mean), task = the sample's pool task; a
                  check's `groups` are domains, `all` every task. ramole_retrieval: each test query's retrieval, the
                  mean of its four hits (IID top-1, top-k; OOD top-1, top-k, as the table's accuracies) x 100; groups
                  `fine-tuning tasks`, `held-out tasks`, `all tasks`; variants the embedders, `pretrained` untrained.
                  Each run seed (config ramole.seeds) has its own retrieval.json and evaluation folders; every run
                  scores the same queries (drawn with the pool's seed).
    text-to-image (tables `t2i:<table>` of config t2i.tables; t2i_scores) the metric rows of molebench.t2i: a
                  composition is a task and its subjects the examples, value = metric x 100; one group per metric
                  the check names (`metrics`), and for a per_size table (MoLE Table 10) per number of subjects.
    figures       figure_above (kind gate_entropy): one value per seed, the mean `column` over the second half of
                  training (one example of one task). figure_below (a measured figure, e.g. mixlora_efficiency, one
                  CSV row per timed repeat): per (row_keys, column), the `new` rows of column `by` against its
                  `reference` rows, as evidence.lowers, beside the paper's change where `paper` gives it.

Check kinds -> evidence (run_check): above, decreasing, middle_best and best_differs over the table's groups;
gain_larger (the check's gain against the gain of its `than` part, whose variants may come from another table, e.g.
MixLoRA multi- against single-task); the three parts of MoLE Table 6's scaling over the table's groups in order, sized
by config `scaling:` (best_at_every_size, lead_grows, all_decline_at_largest); figure_above -> above; figure_below ->
lowers. A check's `min_loras` keeps only the table's groups that compose at least that many LoRAs (none: not testable).

The papers' own numbers: where the claim's table names a `paper` CSV (config tables.<name>.paper, t2i.tables.<name>.
paper), paper_scores gives the paper's values as per-example scores grouped as ours (our variants mapped to the paper's
methods by PAPER_METHODS; text-to-image by the table's `columns`), and paper_gaps runs the claim's own check on them:
each comparison's `paper_gap` is the paper's difference for it (same sign, same units), and its reason says whether
that gap lies inside our interval. tests/test_paper_claims.py checks every claim on these numbers.

Before its check, an NLP table claim is NOT TESTABLE AT THIS SCALE (evidence.testable) when the single-task LoRAs do
not beat zero-shot beyond their interval on the claim's tasks, or when every variant it compares is indistinguishable
from zero-shot there (the LoRA gain check's reference variants, plan.gain_variants, are among the rule's inputs). A
claim whose table, figure or variants the config does not run has not enough evidence at that scale, and says so.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from molebench.core import io
from molebench.core.data import list_tasks, load_task, pool_tasks
from molebench.core.paper import load_paper
from molebench.core.scoring import EXAMPLE_SCORERS
from molebench.nlp import plan
from molebench.nlp.report import metric_files
from molebench.ramole.plan import EMBEDDERS, MIXED_METRICS, SETTINGS, evaluations, pool_gain_file, run_dirs, seed_of
from molebench.report import evidence
from molebench.report.evidence import FAILS, HOLDS, NOT_TESTABLE, UNDECIDED, Settings, Verdict
from molebench.report.pool_gain import pass_share as pool_share
from molebench.t2i import plan as t2i_plan
from molebench.t2i.preconditions import unmet
from molebench.t2i.report import load_metrics as t2i_metrics

__all__ = ["FAILS", "HOLDS", "NOT_TESTABLE", "UNDECIDED", "existing_ledger", "ledger", "load_claims", "write_ledger"]

CLAIMS_FILE = io.resource("paper", "claims.yaml")
SCALING_KINDS = ("best_at_every_size", "lead_grows", "all_decline_at_largest")
CHECK_KINDS = {"above": "table", "decreasing": "table", "middle_best": "table", "best_differs": "table", "gain_larger": "table",
               **dict.fromkeys(SCALING_KINDS, "table"), "figure_above": "figure", "figure_below": "figure"}
RAMOLE_TABLES = {"ramole_retrieval": "embedder", "ramole_mixed_iid": "method", "ramole_mixed_ood": "method"}
NOT_RUN = "not run at this scale"  # the start of a verdict's reason when the claim's variants did not run
POOL_PASS_SHARE = 0.5  # a claim on compositions of pool LoRAs is testable when at least this share teaches its skill
TIMING_DELTA = 0.05  # the smallest relative change of a timing claim (figure_below) worth reporting
T2I_PREFIX = "t2i:"
T2I_METRICS = ("text_alignment", "image_alignment", "presence")
SCORE_COLUMNS = ["variant", "group", "seed", "task", "example", "value"]  # tidy per-example scores, with the group
LEDGER_COLUMNS = ["id", "paper", "source", "claim", "verdict", "evidence", "page"]  # page: the site page of the evidence
COMPARISON_COLUMNS = ["id", "comparison", "estimate", "low", "high", "n_examples", "n_seeds", "paper_gap", "verdict",
                      "reason"]
# our NLP variant -> the method its paper's tables print (data/paper/*.csv); text-to-image tables name theirs in config
# t2i.tables.<name>.columns. A paper row "{A} minus {B}" (MixLoRA's multi-task gaps) gives only a difference.
PAPER_METHODS = {"mole": "MoLE", "nla-output": "NLA", "lorahub": "LoRAHub", "lorahub-all": "LoRAHub", "pems": "PEMs",
                 "single": "Single LoRA", "multitask": "Full LoRA", "multitask-layers-0-20": "0%-20%",
                 "multitask-layers-20-40": "20%-40%", "multitask-layers-40-60": "40%-60%",
                 "multitask-layers-60-80": "60%-80%", "multitask-layers-80-100": "80%-100%",
                 "mole-no-balance": "MoLE w/o Lbalance", "mole-tau1": "MoLE tau1", "mole-tau2": "MoLE tau2",
                 "mole-tau3": "MoLE tau3", "lora-st": "LoRA", "dora-st": "DoRA", "mixlora-st": "MixLoRA",
                 "lora-mt": "LoRA", "dora-mt": "DoRA", "mixlora-mt": "MixLoRA"}
GAP_SEPARATOR = " minus "


def load_claims(path: str | Path = CLAIMS_FILE) -> list[dict]:
    claims = yaml.safe_load(Path(path).read_text())
    for claim in claims:
        missing = {"id", "paper", "source", "claim", "check"} - set(claim)
        if missing:
            raise ValueError(f"{path}: claim {claim.get('id', '?')!r} lacks {sorted(missing)}")
        kind = claim["check"].get("kind")
        if kind not in CHECK_KINDS:
            raise ValueError(f"{path}: claim {claim['id']!r} has check kind {kind!r}; kinds: {', '.join(CHECK_KINDS)}")
        if kind == "gain_larger" and not {"table", "variant", "others"} <= set(claim["check"].get("than") or {}):
            raise ValueError(f"{path}: claim {claim['id']!r} (gain_larger) must name `than: {{table, variant, others}}`")
        if claim["check"].get("table") in RAMOLE_TABLES and not claim["check"].get("groups"):
            raise ValueError(f"{path}: claim {claim['id']!r} checks a RAMoLE table and must name its `groups`")
        if _is_t2i(claim["check"]) and not set(claim["check"].get("metrics") or ["?"]) <= set(T2I_METRICS):
            raise ValueError(f"{path}: claim {claim['id']!r} checks a text-to-image table and must name its `metrics` "
                             f"among {', '.join(T2I_METRICS)}")
    return claims


def _is_t2i(check: dict) -> bool:
    return str(check.get("table", "")).startswith(T2I_PREFIX)


def settings(config: dict, check: dict | None = None) -> Settings:
    """The rule's settings from the config's `claims:` section, with the check's own `delta` where it sets one."""
    out = Settings.from_config(config)
    if check and "delta" in check:
        return replace(out, delta=check["delta"])
    # a timing claim's effect is a fraction of the reference time, not metric points
    return replace(out, delta=TIMING_DELTA) if check and check["kind"] == "figure_below" else out


def needed(claims: list[dict], config: dict) -> tuple[list[str], list[str]]:
    """The config's tables and figures the claims read (the others make their claims undecided)."""
    tables = [t for c in claims if CHECK_KINDS[c["check"]["kind"]] == "table"
              for t in (c["check"]["table"], c["check"].get("than", {}).get("table")) if t]
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


# ---- adapters: each source's results as tidy per-example scores (SCORE_COLUMNS) ------------------------------------

def nlp_scores(config: dict, evaluation_dirs: list[str], groups: list[str]) -> pd.DataFrame:
    """Per-example scores of the evaluation folders: value = the mean over the task's metrics of the example's scores.
    A per-task method's rows (group = the task) are repeated under every group of `groups` holding the task."""
    frames = []
    for path in map(Path, metric_files(evaluation_dirs)):
        rec = io.read_json(path)
        rows = io.read_jsonl(path.with_name(f"{path.stem}.predictions.jsonl"))
        if rows and "scores" not in rows[0]:
            raise ValueError(f"{path.parent}/{path.stem}.predictions.jsonl has no per-example scores (it was "
                             f"written before they existed): delete {path.parent} and run `snakemake reproduce` "
                             "again (with your --configfile)")
        frames.append(pd.DataFrame({"variant": rec["variant"], "group": rec["group"], "seed": int(rec["seed"]),
                                    "task": rec["task"], "example": [str(r["id"]) for r in rows],
                                    "value": [float(np.mean([r["scores"][m] for m in rec["metrics"]])) for r in rows]}))
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS)
    per_task = scores.variant.map(lambda v: plan.per_task(config, v)).astype(bool)
    parts = [scores[~per_task]] + [scores[per_task & scores.task.isin(config["groups"][g])].assign(group=g)
                                   for g in groups]
    return pd.concat(parts, ignore_index=True)[SCORE_COLUMNS]


def ramole_scores(config: dict, retrieval_files: list[str], evaluation_dirs: list[str]) -> dict[str, pd.DataFrame]:
    """RAMoLE table name -> its per-example scores: the mixed-task samples (from each method's evaluation folder,
    {setting}.predictions.jsonl) and the retrieval queries (retrieval.json), group = the domain or the query tasks,
    seed = the run's (the folder's, ramole.plan.seed_of)."""
    cfg = config["ramole"]
    specs, out = pool_tasks(cfg["pool"]), {}
    for setting in SETTINGS:
        rows = []
        for folder in evaluation_dirs:
            if not (path := Path(folder) / f"{setting}.predictions.jsonl").is_file():
                continue
            samples = io.read_jsonl(path)
            predictions, references = [s["prediction"] for s in samples], [s["references"] for s in samples]
            values = np.mean([EXAMPLE_SCORERS[m](predictions, references) for m in MIXED_METRICS], axis=0)
            rows += [(Path(folder).name, specs[s["task"]].family, seed_of(folder), s["task"], str(s["id"]), float(v))
                     for s, v in zip(samples, values)]
        out[f"ramole_mixed_{setting}"] = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    seen, rows = set(cfg["retriever"]["finetune_tasks"]), []
    for retrieval_file in retrieval_files:
        retrieval, seed = io.read_json(retrieval_file), seed_of(retrieval_file)
        for embedder in EMBEDDERS:
            k = retrieval[embedder]["k"]
            for qid, q in retrieval[embedder]["queries"].items():
                if q["split"] != "test":
                    continue
                task, domain = q["task"], specs[q["task"]].family
                hits = [q["iid"][0] == task, task in q["iid"][:k], specs[q["ood"][0]].family == domain,
                        any(specs[n].family == domain for n in q["ood"][:k])]
                rows.append((embedder, "fine-tuning tasks" if task in seen else "held-out tasks", seed, task, qid,
                             100.0 * float(np.mean(hits))))
    if retrieval_files:
        out["ramole_retrieval"] = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    return out


def t2i_scores(spec: dict, metrics: list[str], data: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Per-subject scores of a text-to-image table `spec` from its metric rows (molebench.t2i.report.load_metrics),
    task = '{group} | {composition}', and the groups (one per metric, per size for a per_size table) -> tasks."""
    data = data[data["size"].isin(spec["sizes"])]
    sizes = spec["sizes"] if spec["kind"] == "per_size" else [None]
    frames, groups = [], {}
    for size in sizes:
        for metric in metrics:
            group = f"{size} subjects: {metric}" if size is not None else metric
            part = data if size is None else data[data["size"] == size]
            task = group + " | " + part.composition.astype(str)
            frames.append(pd.DataFrame({"variant": part.variant, "group": group, "seed": part.seed, "task": task,
                                        "example": part.subject.astype(str), "value": 100 * part[metric]}))
            groups[group] = list(dict.fromkeys(task))
    return pd.concat(frames, ignore_index=True), groups


# ---- checks --------------------------------------------------------------------------------------------------------

def _named(check: dict) -> list[str]:
    """The variants a check compares (with those of its `than` part, e.g. gain_larger's other table)."""
    than = _named(check["than"]) if check.get("than") else []
    return list(dict.fromkeys(v for v in [check.get("variant"), *check.get("others", []), *check.get("variants", []),
                                          *than] if v))


def run_check(check: dict, scores: pd.DataFrame, groups: dict[str, list[str]], untrained: list[str],
              s: Settings, sizes: dict[str, int] | None = None) -> Verdict:
    """The evidence check the claim's kind names, on tidy scores (SCORE_COLUMNS) over `groups` (name -> tasks of
    `scores`). For a scaling kind each group is one number of LoRAs (`sizes`: group -> N), its rows that size's
    scores; a task named '{group}: task' is named 'task' again, so that every size resamples the same test examples."""
    kind, options = check["kind"], {"untrained": untrained, "settings": s}
    if kind == "above":
        return evidence.above(scores, check["variant"], check["others"], groups=groups, **options)
    if kind == "gain_larger":
        than = check["than"]
        return evidence.gain_larger(scores, check["variant"], check["others"], than["variant"], than["others"],
                                    groups=groups, **options)
    if kind not in SCALING_KINDS:
        return getattr(evidence, kind)(scores, check["variants"], groups=groups, **options)
    by_size = {sizes[g]: scores[scores.group == g].drop(columns="group").assign(
        task=lambda d, g=g: d.task.str.removeprefix(f"{g}: ")) for g in groups}
    if kind == "all_decline_at_largest":
        return evidence.all_decline_at_largest(by_size, check["variants"], **options)
    return getattr(evidence, kind)(by_size, check["variant"], check["others"], **options)


def _table_frame(scores: pd.DataFrame, groups: dict[str, list[str]]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The table groups' scores, each task named 'group: task' where groups share tasks, so that they stay apart."""
    shared = sum(len(ts) for ts in groups.values()) > len({t for ts in groups.values() for t in ts})
    parts, named = [], {}
    for g, ts in groups.items():
        part = scores[(scores.group == g) & scores.task.isin(ts)]
        parts.append(part.assign(task=g + ": " + part.task) if shared else part)
        named[g] = [f"{g}: {t}" if shared else t for t in ts]
    return pd.concat(parts, ignore_index=True), named


def _testable(config: dict, frame: pd.DataFrame, compared: list[str], s: Settings) -> Verdict | None:
    """evidence.testable over the claim's tasks, with the LoRA gain check's reference variants where they ran."""
    refs, untrained = plan.gain_variants(config), _untrained(config, frame)
    tasks = set(frame.task)
    ran = {v for v in frame.variant.unique() if set(frame[frame.variant == v].task) == tasks}
    if refs["zero_shot"] not in ran:
        return None
    compared = [v for v in compared if v != refs["zero_shot"]]
    return evidence.testable(frame, zero_shot=refs["zero_shot"], compared=compared,
                             single=refs["single_lora"] if refs["single_lora"] in ran else None,
                             untrained=untrained, settings=s) if compared else None


def _untrained(config: dict, scores: pd.DataFrame) -> list[str]:
    return [v for v in scores.variant.unique() if not plan.method_of(config, v).seeded]


def n_loras(config: dict, group: str) -> int:
    """How many LoRAs a group's compositions compose: a scaling group's size, else the tasks of the group it composes
    from (config `compose_from`, e.g. Table 8's NLI tasks), else its own tasks."""
    tasks = config.get("compose_from", {}).get(group) or config["groups"][group]
    return plan.scaling_groups(config).get(group) or len(tasks)


def _nlp_claim(check: dict, config: dict, scores: pd.DataFrame, s: Settings) -> Verdict:
    spec, least = config["tables"][check["table"]], check.get("min_loras", 0)
    groups = {g: list(config["groups"][g]) for g in spec["groups"] if n_loras(config, g) >= least}
    if not groups:
        return Verdict(NOT_TESTABLE, f"the claim is about compositions of {least} or more LoRAs; {check['table']}'s "
                                     f"groups compose at most {max(n_loras(config, g) for g in spec['groups'])}")
    refs = list(plan.gain_variants(config).values())
    frame, named = _table_frame(scores[scores.variant.isin([*_named(check), *refs])], groups)
    if verdict := _testable(config, frame, _named(check), s):
        return verdict
    frame = frame[frame.variant.isin(_named(check))]
    return run_check(check, frame, named, _untrained(config, frame), s, plan.scaling_groups(config))


def _figure_claim(check: dict, data: pd.DataFrame, s: Settings) -> Verdict:
    if check["kind"] == "figure_above":
        late = data[data.step >= data.step.max() / 2]
        per_seed = late.groupby(["variant", "seed"], as_index=False)[check["column"]].mean()
        scores = per_seed.assign(task=check["column"], example="mean over the second half of training",
                                 value=per_seed[check["column"]])
        return evidence.above(scores, check["variant"], check["others"], untrained=(), settings=s)
    keys, by, paper = check.get("row_keys", []), check["by"], check.get("paper", {})
    measured = {}
    for row, part in data.groupby(keys, sort=False) if keys else [((), data)]:
        row = row if isinstance(row, tuple) else (row,)
        label = ", ".join(f"{k} {v}" for k, v in zip(keys, row))
        for column in check["columns"]:
            new, reference = (part[part[by] == side][column].dropna().tolist() for side in (check["new"],
                                                                                            check["reference"]))
            if new and reference:
                measured[f"{label}: {column}, {check['new']} against {check['reference']}"] = new, reference
    if min((len(x) for pair in measured.values() for x in pair), default=0) < 2:
        return Verdict(UNDECIDED, f"{check['figure']} has fewer than 2 repeats of some timing; rerun the figure")
    verdict = evidence.lowers(measured, delta=s.delta, settings=s)
    notes = {label: paper[c] for label in measured for c in paper if f": {c}," in label}
    return replace(verdict, comparisons=tuple(
        replace(c, reason=c.reason + (f"; the paper's {notes[c.label]:+.0%} lies "
                                      f"{'inside' if c.interval.contains(notes[c.label]) else 'outside'} the interval"
                                      if c.label in notes else ""))
        for c in verdict.comparisons))


def _ramole_claim(check: dict, table: str, config: dict, data: dict[str, pd.DataFrame], s: Settings) -> Verdict:
    if "ramole" not in config:
        return Verdict(UNDECIDED, f"not run at this scale: {table} (the config has no ramole: block)")
    if absent := [v for v in _named(check) if v not in ramole_variants(table, config)]:
        return Verdict(UNDECIDED, f"not run at this scale: {', '.join(absent)} in {table}")
    scores = data[table]
    every = list(dict.fromkeys(scores.task))
    groups = {g: every if g in ("all", "all tasks") else list(dict.fromkeys(scores[scores.group == g].task))
              for g in check["groups"]}
    groups = {g: tasks for g, tasks in groups.items() if tasks}  # a row with no queries (every pool task fine-tuned)
    if not groups:
        return Verdict(UNDECIDED, f"not run at this scale: {table} has no queries in {', '.join(check['groups'])}")
    return run_check(check, scores, groups, ["pretrained"] if table == "ramole_retrieval" else [], s)


def _t2i_claim(check: dict, source: str, config: dict, data: pd.DataFrame | None, s: Settings) -> Verdict:
    spec = config.get("t2i", {}).get("tables", {}).get(source[len(T2I_PREFIX):])
    if spec is None:
        return Verdict(UNDECIDED, f"not run at this scale: {source}")
    if absent := [v for v in _named(check) if v not in spec["columns"].values()]:
        return Verdict(UNDECIDED, f"not run at this scale: {', '.join(absent)} in {source}")
    scores, groups = t2i_scores(spec, check["metrics"], data)
    return run_check(check, scores, groups, [], s)


# ---- the papers' own numbers ---------------------------------------------------------------------------------------

def paper_file(config: dict, check: dict) -> str | None:
    """The paper CSV of the claim's table (config tables.<name>.paper, t2i.tables.<name>.paper), or None."""
    if _is_t2i(check):
        spec = config.get("t2i", {}).get("tables", {}).get(check["table"][len(T2I_PREFIX):], {})
    else:
        spec = config["tables"].get(check.get("table"), {}) if CHECK_KINDS[check["kind"]] == "table" else {}
    return spec.get("paper")


def _paper_values(rows: pd.DataFrame) -> dict[str, float]:
    """method -> the paper's value in `rows` (a method's rows averaged, e.g. over Rouge-1/2/L). A method the paper
    gives only through "{A} minus {B}" rows gets A's value minus the gap, with A at 0 when the paper gives A no value
    (only differences are published then, and only differences are compared)."""
    values = rows.groupby("method", sort=False)["value"].mean().to_dict()
    for name, gap in list(values.items()):
        if GAP_SEPARATOR in name:
            a, b = name.split(GAP_SEPARATOR)
            values.setdefault(a, 0.0)
            values.setdefault(b, values[a] - gap)
    return values


def _nlp_paper_scores(check: dict, config: dict, paper: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The paper's values for an NLP table's groups: a group's family is its tasks' (as the table pages match them);
    one task per group carries the group's printed average (or the `paper_rows` row), or, for best_differs, every task
    whose paper_task the paper prints. A group is left out unless the paper gives every named variant a value. The
    variants of a `than` part are read from their own table's CSV."""
    spec, named, than = config["tables"][check["table"]], _named(check), check.get("than") or {}
    other = config["tables"].get(than.get("table"), {}).get("paper")
    papers = {v: load_paper(other) if other and v in _named(than) else paper for v in named}
    rows, groups = [], {}
    known = set(list_tasks())  # a group of tasks without task files (no family, no paper_task) has no paper values
    for g in [g for g in spec["groups"] if n_loras(config, g) >= check.get("min_loras", 0)]:
        if not set(config["groups"][g]) <= known:
            continue
        tasks = [load_task(t) for t in config["groups"][g]]
        families = {spec["paper_family"]} if spec.get("paper_family") else {t.family for t in tasks}
        if len(families) != 1:
            continue
        family = families.pop()
        if check["kind"] == "best_differs":
            cells = {t.name: t.paper_task for t in tasks}
        else:  # the sizes of a scaling claim share one task, so that they are resampled together
            cells = {family if check["kind"] in SCALING_KINDS else g: spec.get("paper_rows", {}).get(g, "Average")}
        for task, row in cells.items():
            values = {v: _paper_values(papers[v][(papers[v].family == family)
                                                 & (papers[v].paper_task.str.casefold() == row.casefold())])
                      for v in named}
            if all(PAPER_METHODS.get(v) in values[v] for v in named):
                rows += [(v, g, 1, task, "paper", values[v][PAPER_METHODS[v]]) for v in named]
                groups.setdefault(g, []).append(task)
    return pd.DataFrame(rows, columns=SCORE_COLUMNS), groups


def _t2i_paper_scores(check: dict, config: dict, paper: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The paper's values for a text-to-image table, as its metric rows (one composition per size: the printed
    average, the size's row of a per_size table, the variant's row of a per_variant one; one subject per printed
    image-alignment column), through t2i_scores as our results go."""
    spec = config["t2i"]["tables"][check["table"][len(T2I_PREFIX):]]
    methods, rows = {v: m for m, v in spec["columns"].items()}, []
    for variant in _named(check):
        for size in spec["sizes"]:
            key = {"per_size": str(size), "per_variant": methods[variant]}.get(spec["kind"], "Average")
            cell = paper[(paper.method == methods[variant]) & (paper.paper_task == key)]
            text = cell[cell.metric == "Text-alignment"].value
            if text.size != 1:  # the paper prints no such row
                return pd.DataFrame(columns=SCORE_COLUMNS), {}
            composition = "paper" if spec["kind"] == "per_variant" else key  # one composition, every variant
            rows += [{"variant": variant, "composition": composition, "size": size, "seed": 1, "concept": k + 1,
                      "subject": r.metric, "text_alignment": text.item(), "image_alignment": r.value,
                      "presence": np.nan} for k, r in enumerate(cell[cell.metric.str.contains("Image")].itertuples())]
    return t2i_scores(spec, check["metrics"], pd.DataFrame(rows))


def paper_scores(check: dict, config: dict) -> tuple[pd.DataFrame, dict[str, list[str]]] | None:
    """The paper's published values for a claim's check, as tidy per-example scores (SCORE_COLUMNS; one seed) whose
    group means are the paper's values, grouped and named as the ledger groups our scores, so that the claim's check
    run on them gives the same comparisons; None when the claim's table has no paper CSV or the paper gives no value
    for some named variant."""
    path = paper_file(config, check)
    if not path or (_is_t2i(check) and "presence" in check["metrics"]):  # the paper prints no presence
        return None
    paper = load_paper(path)
    frame, groups = (_t2i_paper_scores if _is_t2i(check) else _nlp_paper_scores)(check, config, paper)
    return (frame, groups) if groups and frame.value.notna().all() else None


def paper_gaps(check: dict, config: dict, s: Settings) -> dict[str, float]:
    """Comparison label -> the paper's published difference for it (same sign and units as our estimate): the
    claim's check run on paper_scores, whose estimates are the paper's contrasts exactly. Empty without paper values."""
    built = paper_scores(check, config)
    if built is None:
        return {}
    frame, groups = built
    verdict = run_check(check, frame, groups, [], s, plan.scaling_groups(config))
    return {c.label: c.interval.estimate for c in verdict.comparisons}


def _with_gap(c: evidence.Comparison, gap: float | None) -> evidence.Comparison:
    if gap is None:
        return c
    return replace(c, reason=f"{c.reason}; paper's gap {gap:+.2f} {'inside' if c.interval.contains(gap) else 'outside'}")


def ledger(claims: list[dict], config: dict, scores: pd.DataFrame | None = None,
           figure_data: dict[str, pd.DataFrame] | None = None, ramole_data: dict[str, pd.DataFrame] | None = None,
           t2i_data: pd.DataFrame | None = None, pool_gain: pd.DataFrame | None = None,
           t2i_preconditions: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ledger, comparisons): one row per claim with its verdict, and one row per comparison behind the verdicts.

    `scores` are the NLP tables' per-example scores (nlp_scores, SCORE_COLUMNS) with the LoRA gain check's reference
    variants, `figure_data` a figure name -> its CSV's data, `ramole_data` a RAMoLE table name -> its per-example
    scores (ramole_scores), `t2i_data` the text-to-image metric rows (needed_t2i), `pool_gain` the pool LoRAs' gain
    check (molebench.report.pool_gain), which decides whether claims on compositions of pool LoRAs are testable, and
    `t2i_preconditions` (molebench.t2i.preconditions) whether the text-to-image claims are."""
    rows, details = [], []
    for claim in claims:
        check = claim["check"]
        source, s = check.get("table") or check.get("figure"), settings(config, check)
        if source in RAMOLE_TABLES:
            verdict = _ramole_claim(check, source, config, ramole_data or {}, s)
        elif _is_t2i(check):
            verdict = _t2i_claim(check, source, config, t2i_data, s)
        else:
            spec = {**config["tables"], **config.get("figures", {})}.get(source)
            ran = [*(spec or {}).get("variants", []),
                   *config["tables"].get(check.get("than", {}).get("table"), {}).get("variants", [])]
            absent = [v for v in _named(check) if spec is not None and v not in ran]
            if spec is None or absent:
                missing = f"{', '.join(absent)} in {source}" if spec is not None else source
                verdict = Verdict(UNDECIDED, f"not run at this scale: {missing}")
            elif CHECK_KINDS[check["kind"]] == "figure":
                verdict = _figure_claim(check, (figure_data or {})[source], s)
            else:
                verdict = _nlp_claim(check, config, scores, s)
        run = not (verdict.verdict == UNDECIDED and verdict.reason.startswith(NOT_RUN))
        if run and pool_gain is not None and _on_pool(check, config) and pool_gain.passes.mean() < POOL_PASS_SHARE:
            verdict = Verdict(NOT_TESTABLE, f"the composed LoRAs teach too little: {pool_share(pool_gain)} their own "
                                            f"task's gain check, fewer than {POOL_PASS_SHARE:.0%}")
        if run and _is_t2i(check) and t2i_preconditions is not None and (why := unmet(t2i_preconditions)):
            verdict = Verdict(NOT_TESTABLE, why)
        page = f"t2i/{source[len(T2I_PREFIX):]}.html" if _is_t2i(check) else f"{source}.html"
        rows.append({**{k: claim[k] for k in LEDGER_COLUMNS[:4]}, "verdict": verdict.verdict,
                     "evidence": verdict.reason, "page": page})
        gaps = paper_gaps(check, config, s) if verdict.comparisons and CHECK_KINDS[check["kind"]] == "table" else {}
        shown = [_with_gap(c, gaps.get(c.label)) for c in verdict.comparisons]
        details += [{"id": claim["id"], "comparison": c.label, "estimate": c.interval.estimate, "low": c.interval.low,
                     "high": c.interval.high, "n_examples": c.interval.n_examples, "n_seeds": c.interval.n_seeds,
                     "paper_gap": gaps.get(c.label, np.nan), "verdict": c.verdict, "reason": c.reason}
                    for c in shown]
    return pd.DataFrame(rows, columns=LEDGER_COLUMNS), pd.DataFrame(details, columns=COMPARISON_COLUMNS)


def _on_pool(check: dict, config: dict) -> bool:
    """Whether the claim compares compositions of pool LoRAs: RAMoLE's mixed-task tables, or a table of `scaling`
    groups (MoLE Table 6). Retrieval accuracy does not depend on what the LoRAs learned."""
    table = config["tables"].get(check.get("table"), {})
    return (check.get("table") in RAMOLE_TABLES and RAMOLE_TABLES[check["table"]] == "method") or any(
        g in plan.scaling_groups(config) for g in table.get("groups", []))


# ---- the claims rule ---------------------------------------------------------------------------------------------

def inputs(config: dict, claims: list[dict] | None = None) -> tuple[list[str], list[str], list[str], list[str]]:
    """The evaluation folders (the tables' and, on their groups, the LoRA gain check's reference variants'), figure
    CSVs, RAMoLE sources (retrieval.json, the methods' evaluation folders) and text-to-image metric folders the ledger
    of `claims` (default: every claim) reads."""
    claims, res = load_claims() if claims is None else claims, config["results_dir"]
    tables, figures = needed(claims, config)
    groups = list(dict.fromkeys(g for t in tables for g in config["tables"][t]["groups"]))
    references = list(plan.gain_variants(config).values()) if tables else []
    ramole = needed_ramole(claims, config)
    runs = list(run_dirs(config, res).values()) if ramole else []
    return (list(dict.fromkeys([*(d for t in tables for d in plan.table_inputs(config, t)),
                                *(d for v in references for d in plan.evaluation_dirs(config, v, groups))])),
            [f"{res}/figures/{f}.csv" for f in figures],
            [f"{run}/retrieval.json" for run in runs if "ramole_retrieval" in ramole]
            + [f"{run}/eval/{m}" for run in runs for m in config["ramole"]["methods"] if set(ramole) - {"ramole_retrieval"}],
            t2i_plan.evaluations(config["t2i"], res) if needed_t2i(claims, config) else [])


def paper_inputs(config: dict) -> list[str]:
    """The paper CSVs the ledger's paper gaps read (inputs of the claims rule, so that a corrected number reruns it)."""
    files = []
    for claim in load_claims():
        check = claim["check"]
        if CHECK_KINDS[check["kind"]] == "table":
            files += [paper_file(config, check),
                      config["tables"].get(check.get("than", {}).get("table"), {}).get("paper")]
    return [f for f in dict.fromkeys(files) if f]


def write_ledger(config: dict, evaluation_dirs: list[str], figure_csvs: dict[str, str], ramole_inputs: list[str],
                 t2i_dirs: list[str], claimed: list[dict], out_ledger: str, out_comparisons: str,
                 pool_gain_file: str | None = None, t2i_preconditions_file: str | None = None,
                 left_out: pd.DataFrame | None = None) -> None:
    """The ledger of the `claimed` claims and its comparisons as CSVs, from the inputs `inputs` lists (the claims
    rule's declared inputs); `left_out` adds ledger rows of claims that were not computed (existing_ledger)."""
    groups = list(dict.fromkeys(g for t in needed(claimed, config)[0] for g in config["tables"][t]["groups"]))
    retrievals = [p for p in ramole_inputs if p.endswith(".json")]
    ramole = (ramole_scores(config, retrievals, [p for p in ramole_inputs if p not in retrievals])
              if ramole_inputs else {})
    verdicts, comparisons = ledger(claimed, config, nlp_scores(config, evaluation_dirs, groups),
                                   {name: pd.read_csv(path) for name, path in figure_csvs.items()}, ramole,
                                   t2i_metrics(t2i_dirs) if t2i_dirs else None,
                                   pd.read_csv(pool_gain_file) if pool_gain_file else None,
                                   pd.read_csv(t2i_preconditions_file) if t2i_preconditions_file else None)
    if left_out is not None:
        verdicts = pd.concat([verdicts, left_out], ignore_index=True)
    io.write_text(out_comparisons, comparisons.to_csv(index=False))
    io.write_text(out_ledger, verdicts.to_csv(index=False))


def gate_files(config: dict, claim: dict) -> list[str]:
    """The checks that decide whether `claim` is testable: the pool LoRAs' gain check for compositions of pool LoRAs,
    the text-to-image world's preconditions for its claims."""
    res, check = config["results_dir"], claim["check"]
    return ([pool_gain_file(res)] if "ramole" in config and _on_pool(check, config) else []) + (
        [t2i_plan.preconditions_file(res)] if needed_t2i([claim], config) and config["t2i"]["source"] == "world"
        else [])


def existing_ledger(config: dict, out_ledger: str, out_comparisons: str) -> list[tuple[str, list[str]]]:
    """The ledger from the results a partial run left: the claims whose inputs (the claims rule's, and their gates)
    all exist get their verdicts; each other claim says "not run in these results". Returns (claim id, its missing
    inputs) for the claims left out."""
    complete, missing = [], []
    for claim in load_claims():
        paths = [p for part in inputs(config, [claim]) for p in part] + gate_files(config, claim)
        absent = [p for p in paths if not Path(p).exists()]
        if absent:
            missing.append((claim, absent))
        else:
            complete.append(claim)
    left_out = pd.DataFrame([{**{k: c[k] for k in LEDGER_COLUMNS[:4]}, "verdict": UNDECIDED,
                              "evidence": f"not run in these results: {len(a)} of its inputs missing, e.g. {a[0]}",
                              "page": ""} for c, a in missing], columns=LEDGER_COLUMNS)
    evaluations, figures, ramole, t2i = inputs(config, complete)
    gates = {p for c in complete for p in gate_files(config, c)}
    pool, preconditions = pool_gain_file(config["results_dir"]), t2i_plan.preconditions_file(config["results_dir"])
    write_ledger(config, evaluations, {Path(p).stem: p for p in figures}, ramole, t2i, complete, out_ledger,
                 out_comparisons, pool if pool in gates else None, preconditions if preconditions in gates else None,
                 left_out)
    return [(c["id"], a) for c, a in missing]
