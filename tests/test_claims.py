"""claims.py: every check kind decided by molebench.report.evidence on synthetic per-example scores (each can hold,
fail and stay undecided), "not testable at this scale", the data adapters, and the claims file itself."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molebench.report.claims import (
    COMPARISON_COLUMNS,
    LEDGER_COLUMNS,
    _on_pool,
    gate_files,
    ledger,
    load_claims,
    needed,
    nlp_scores,
    ramole_scores,
    settings,
)
from molebench.report.evidence import FAILS, HOLDS, NOT_TESTABLE, UNDECIDED
from tests.conftest import mini_config

S = [1, 2, 3]
TASKS = ["t1", "t2"]
VARIANTS = {v: {"method": m} for v, m in [("zero-shot", "zero-shot"), ("single", "single"), ("mole", "mole"),
                                          ("nla", "nla"), ("lorahub", "lorahub"), ("pems", "pems"), ("m", "m-mole"),
                                          ("l", "mole"), ("b", "b-mole"), ("n", "n-mole"), ("low", "multitask"),
                                          ("high", "multitask")]}
BASE = {"zero-shot": -20.0, "single": 15.0}  # the references: single-task LoRAs well above zero-shot


def per_example(effects, group="g", n=40, noise=3.0, seeds=S, seed_sd=0.3, rng=0, spread=10.0):
    """Tidy per-example scores: variant v scores 50 + effect (a number, or task -> number) + the example's own
    difficulty (shared by every variant, as all score one test set) + a seed shift + noise; zero-shot runs once."""
    gen = np.random.default_rng(rng)
    difficulty = {t: gen.normal(0, spread, n) for t in TASKS}
    rows = []
    for v, effect in {**BASE, **effects}.items():
        for s in [1] if v == "zero-shot" else seeds:
            shift = gen.normal(0, seed_sd)
            for t in TASKS:
                e = effect[t] if isinstance(effect, dict) else effect
                values = 50 + e + difficulty[t] + shift + gen.normal(0, noise, n)
                rows += [{"variant": v, "group": group, "seed": s, "task": t, "example": f"{t}-{i}", "value": x}
                         for i, x in enumerate(values)]
    return pd.DataFrame(rows)


def config(**tables):
    return {"groups": {"g": TASKS}, "variants": VARIANTS, "figures": {},
            "tables": {name: {"groups": ["g"], "variants": variants} for name, variants in tables.items()}}


def claim(id_, check):
    return {"id": id_, "paper": "MoLE", "source": "Table", "claim": id_, "check": check}


def decide(check, scores, cfg=None, **sources):
    cfg = cfg or config(t=[check.get("variant"), *check.get("others", []), *check.get("variants", [])])
    verdicts, comparisons = ledger([claim("c", {"table": "t", **check})], cfg, scores, **sources)
    assert list(verdicts.columns) == LEDGER_COLUMNS and list(comparisons.columns) == COMPARISON_COLUMNS
    return verdicts.verdict.item(), verdicts.evidence.item(), comparisons


ABOVE = {"kind": "above", "variant": "mole", "others": ["nla", "lorahub"]}


@pytest.mark.parametrize("effects,kw,verdict,reason", [
    ({"mole": 10, "nla": 0, "lorahub": 2}, {}, HOLDS, "2 of 2 comparisons hold"),
    ({"mole": 0, "nla": 10, "lorahub": -2}, {}, FAILS, "contradicted"),  # one comparison contradicted fails it
    ({"mole": 3, "nla": 0, "lorahub": 1}, {"noise": 25, "n": 10}, UNDECIDED, "0 of 2"),  # too noisy to tell
    ({"mole": 0, "nla": 0, "lorahub": 0}, {"noise": 0.5, "n": 200, "seed_sd": 0.02}, FAILS, "no gain"),  # a gain, if any, is < delta
    ({"mole": 10, "nla": 0, "lorahub": 2}, {"seeds": [1]}, UNDECIDED, "1 more seed(s) needed"),
])
def test_above_holds_fails_and_stays_undecided(effects, kw, verdict, reason):
    got, why, comparisons = decide(ABOVE, per_example(effects, **kw))
    assert got == verdict and reason in why, why
    assert list(comparisons.comparison) == ["g: mole > nla", "g: mole > lorahub"]
    row = comparisons.iloc[0]
    assert row.low <= row.estimate <= row.high and row.n_examples == kw.get("n", 40)
    assert row.n_seeds == len(kw.get("seeds", S))


def test_a_claim_without_an_effect_is_not_a_failure():
    """Every compared variant at the zero-shot level (the mini Tables 6 and 8): not testable, not "fails"; with no
    true effect at mini noise: not enough evidence."""
    flat = per_example({"zero-shot": 0, "mole": 0, "nla": 0, "lorahub": 0}, noise=10, n=20)
    got, why, _ = decide(ABOVE, flat)
    assert got == NOT_TESTABLE and "indistinguishable from zero-shot" in why
    got, _, _ = decide(ABOVE, per_example({"mole": 0, "nla": 0, "lorahub": 0}, noise=15, n=20))
    assert got == UNDECIDED


def test_not_testable_when_the_single_task_loras_do_not_beat_zero_shot():
    scores = per_example({"zero-shot": 0, "single": 0.5, "mole": 10, "nla": 0, "lorahub": 2}, noise=10)
    got, why, comparisons = decide(ABOVE, scores)
    assert got == NOT_TESTABLE and "single-task LoRAs (single) do not beat zero-shot" in why
    assert comparisons.empty
    # without zero-shot scores on the claim's tasks the precondition cannot be checked, and the claim is decided
    got, _, _ = decide(ABOVE, scores[scores.variant != "zero-shot"])
    assert got == HOLDS


@pytest.mark.parametrize("effects,kw,verdict", [
    ({"mole": 10, "nla": 5, "lorahub": 0}, {}, HOLDS),
    ({"mole": 0, "nla": 5, "lorahub": 10}, {}, FAILS),
    ({"mole": 2, "nla": 1, "lorahub": 0}, {"noise": 25, "n": 10}, UNDECIDED),
])
def test_decreasing(effects, kw, verdict):
    check = {"kind": "decreasing", "variants": ["mole", "nla", "lorahub"]}
    got, _, comparisons = decide(check, per_example(effects, **kw))
    assert got == verdict
    assert list(comparisons.comparison) == ["g: mole > nla", "g: nla > lorahub"]


@pytest.mark.parametrize("effects,kw,verdict,reason", [
    ({"m": 0, "l": 10, "b": 5, "n": 0}, {}, HOLDS, "above both ends"),
    ({"m": 10, "l": 0, "b": 2, "n": 0}, {}, FAILS, "m above every intermediate variant"),
    ({"m": 0, "l": 2, "b": 1, "n": 0}, {"noise": 25, "n": 10}, UNDECIDED, UNDECIDED),
])
def test_middle_best(effects, kw, verdict, reason):
    got, why, comparisons = decide({"kind": "middle_best", "variants": ["m", "l", "b", "n"]},
                                   per_example(effects, **kw))
    assert got == verdict and reason in why, why
    assert len(comparisons) == 4  # each intermediate variant against each end


@pytest.mark.parametrize("effects,kw,verdict", [
    ({"low": {"t1": 10, "t2": 0}, "high": {"t1": 0, "t2": 10}}, {}, HOLDS),  # each task prefers its own range
    ({"low": 10, "high": 0}, {}, FAILS),  # one range best on every task
    ({"low": {"t1": 2, "t2": 0}, "high": {"t1": 0, "t2": 2}}, {"noise": 25, "n": 10}, UNDECIDED),
])
def test_best_differs(effects, kw, verdict):
    got, _, comparisons = decide({"kind": "best_differs", "variants": ["low", "high"]}, per_example(effects, **kw))
    assert got == verdict
    assert list(comparisons.comparison) == ["g, t1: low > high", "g, t2: low > high"]


@pytest.mark.parametrize("effects,kw,verdict", [
    ({"mole": 10, "nla": 0, "lorahub": 2, "pems": 0}, {}, HOLDS),  # gain 10 against 2
    ({"mole": 2, "nla": 0, "lorahub": 10, "pems": 0}, {}, FAILS),  # gain 2 against 10
    ({"mole": 3, "nla": 0, "lorahub": 2, "pems": 0}, {"noise": 25, "n": 10}, UNDECIDED),
])
def test_gain_larger(effects, kw, verdict):
    """MixLoRA's larger multi-task gain: (mole - nla) on one table against (lorahub - pems) on another."""
    check = {"kind": "gain_larger", "variant": "mole", "others": ["nla"],
             "than": {"table": "u", "variant": "lorahub", "others": ["pems"]}}
    cfg = config(t=["mole", "nla"], u=["lorahub", "pems"])
    got, _, comparisons = decide(check, per_example(effects, **kw), cfg)
    assert got == verdict
    assert list(comparisons.comparison) == ["g: mole - nla > lorahub - pems"]
    assert decide(check, per_example(effects), config(t=["mole", "nla"]))[0] == UNDECIDED  # `than` table not run
    assert needed([claim("c", {"table": "t", **check})], cfg)[0] == ["t", "u"]  # the ledger reads both tables


def test_min_loras_leaves_out_smaller_compositions():
    """Observation 1 is about 4 or more LoRAs: a group of 2 composes too few, and the claim is not testable."""
    check = {"kind": "above", "variant": "nla", "others": ["mole"], "min_loras": 4}
    got, why, comparisons = decide(check, per_example({"mole": 0, "nla": 10}))
    assert got == NOT_TESTABLE and "4 or more LoRAs" in why and comparisons.empty
    got, _, _ = decide({**check, "min_loras": 2}, per_example({"mole": 0, "nla": 10}))
    assert got == HOLDS


def test_paper_gap_is_empty_without_the_papers_values(tmp_path):
    """A table with a paper CSV whose groups have no task files (no family to match) or whose paper lacks the
    compared methods: the comparisons carry no paper gap, and nothing breaks."""
    paper = tmp_path / "paper.csv"
    paper.write_text("table,family,paper_task,metric,method,value\n3,g,Average,EM,MoLE,50.0\n")
    cfg = config(t=["mole", "nla", "lorahub"])
    cfg["tables"]["t"]["paper"] = str(paper)
    _, comparisons = ledger([claim("c", {"table": "t", **ABOVE})], cfg, per_example({"mole": 10, "nla": 0,
                                                                                    "lorahub": 2}))
    assert len(comparisons) == 2 and comparisons.paper_gap.isna().all()
    assert "paper's gap" not in " ".join(comparisons.reason)


# ---- MoLE Table 6: three claims over the scaling groups --------------------------------------------------------

SIZES = [8, 24, 48, 128]
PAPER_T6 = {"mole": (36.6, 38.7, 39.4, 38.5), "nla": (32.7, 36.8, 34.4, 34.1), "lorahub": (33.9, 37.1, 36.9, 35.5),
            "pems": (33.7, 36.9, 34.6, 34.9)}  # the paper's averages at 8, 24, 48 and 128 LoRAs


def scaling(table, **kw):
    """Per-example scores of each size's group g-n{size}, variant v at table[v][size index]. evidence resamples each
    size's examples on their own (they are not paired across sizes), so the paper's own table needs little spread."""
    frames = [per_example({"zero-shot": -60, **{v: xs[i] - 50 for v, xs in table.items()}}, group=f"g-n{n}", rng=i,
                          **kw)
              for i, n in enumerate(SIZES)]
    cfg = {"groups": {"g": TASKS, **{f"g-n{n}": TASKS for n in SIZES}}, "variants": VARIANTS, "figures": {},
           "scaling": {"group": "g", "sizes": SIZES},
           "tables": {"t": {"groups": [f"g-n{n}" for n in SIZES], "variants": list(table)}}}
    return pd.concat(frames, ignore_index=True), cfg


BEST = {"kind": "best_at_every_size", "variant": "mole", "others": ["nla", "lorahub", "pems"]}
GROWS = {"kind": "lead_grows", "variant": "mole", "others": ["lorahub"]}
DECLINE = {"kind": "all_decline_at_largest", "variants": ["mole", "nla", "lorahub"]}


def test_scaling_claims_hold_on_the_papers_table6():
    scores, cfg = scaling(PAPER_T6, noise=0.5, n=100, seed_sd=0.05, spread=0.5)
    for check in (BEST, GROWS, DECLINE):
        assert decide(check, scores, cfg)[0] == HOLDS, check["kind"]
    # the paper's PEMs rises from 48 to 128 LoRAs (34.6 -> 34.9): "all methods decline" fails on its own table
    got, why, comparisons = decide({**DECLINE, "variants": [*DECLINE["variants"], "pems"]}, scores, cfg)
    assert got == FAILS and "pems" in why
    assert list(comparisons.comparison)[-1] == "pems: N=48 > N=128"


def test_scaling_claims_fail_and_stay_undecided():
    shrinking = {**PAPER_T6, "mole": (43.0, 41.0, 39.0, 37.0)}  # lead over LoRAHub 9.1, 3.9, 2.1, 1.5
    scores, cfg = scaling(shrinking)
    assert decide(GROWS, scores, cfg)[0] == FAILS
    assert decide(BEST, scores, cfg)[0] == HOLDS
    rising = {v: (xs[0], xs[1], xs[2], xs[2] + 5) for v, xs in PAPER_T6.items()}
    scores, cfg = scaling(rising)
    assert decide(DECLINE, scores, cfg)[0] == FAILS
    trailing = {**PAPER_T6, "mole": (30.0, 38.7, 39.4, 38.5)}  # below every baseline at 8 LoRAs
    scores, cfg = scaling(trailing)
    got, why, _ = decide(BEST, scores, cfg)
    assert got == FAILS and "N=8" in why
    scores, cfg = scaling(PAPER_T6, noise=30, n=10, seed_sd=2)
    for check in (BEST, GROWS, DECLINE):
        assert decide(check, scores, cfg)[0] == UNDECIDED, check["kind"]


# ---- figures ------------------------------------------------------------------------------------------------------

def entropy(bal, nobal, sd=0.02):
    gen = np.random.default_rng(1)
    return pd.DataFrame([{"variant": v, "seed": s, "step": step, "lora": k, "gate_entropy": e + shift - 0.1 * step * (
                          v == "nobal")}
                         for v, e in (("bal", bal), ("nobal", nobal)) for s in S
                         for shift in [gen.normal(0, sd)] for step in range(4) for k in range(3)])


ENTROPY = claim("entropy", {"kind": "figure_above", "figure": "fig5", "column": "gate_entropy", "variant": "bal",
                            "others": ["nobal"], "delta": 0.05})
FIG_CONFIG = {"groups": {}, "tables": {}, "variants": VARIANTS,
              "figures": {"fig5": {"variants": ["bal", "nobal"]}, "eff": {"variants": ["mixlora-mt"]}}}


@pytest.mark.parametrize("bal,nobal,sd,verdict", [(1.0, 1.0, 0.02, HOLDS), (0.5, 1.2, 0.02, FAILS),
                                                  (1.0, 1.1, 0.3, UNDECIDED)])
def test_gate_entropy_is_one_value_per_seed(bal, nobal, sd, verdict):
    verdicts, comparisons = ledger([ENTROPY], FIG_CONFIG, None, {"fig5": entropy(bal, nobal, sd)})
    assert verdicts.verdict.item() == verdict
    assert comparisons.n_seeds.item() == 3 and comparisons.n_examples.item() == 1
    if verdict == HOLDS:  # the second half of training (steps 2, 3): 0.25 nats lower without the balance loss
        assert comparisons.estimate.item() == pytest.approx(0.25, abs=0.03)


EFFICIENCY = claim("eff", {"kind": "figure_below", "figure": "eff", "columns": ["us_per_token", "peak_mb"],
                           "by": "path", "new": "optimised", "reference": "plain", "row_keys": ["shape", "mode"],
                           "delta": 0.05, "paper": {"us_per_token": -0.30, "peak_mb": -0.40}})


def timings(latency, memory, repeats=3):
    """Figure rows, one per timed repeat: the optimised path at (1 + change) x the plain path's, per mode."""
    return pd.DataFrame([{"shape": "s", "mode": mode, "path": path, "repeat": r,
                          "us_per_token": 10 * (1 + (latency[mode] if path == "optimised" else 0)) * (1 + 0.01 * r),
                          "peak_mb": 100 * (1 + (memory[mode] if path == "optimised" else 0)) * (1 + 0.002 * r)}
                         for mode in ("inference", "training") for path in ("plain", "optimised")
                         for r in range(1, repeats + 1)])


def test_efficiency_claim_from_repeated_timings():
    saves = timings({"inference": -0.3, "training": -0.2}, {"inference": -0.4, "training": -0.4})
    verdicts, comparisons = ledger([EFFICIENCY], FIG_CONFIG, None, {"eff": saves})
    assert verdicts.verdict.item() == HOLDS
    assert list(comparisons.comparison) == [f"shape s, mode {m}: {c}, optimised against plain"
                                            for m in ("inference", "training") for c in ("us_per_token", "peak_mb")]
    assert comparisons.estimate.iloc[0] == pytest.approx(-0.3, abs=0.01)
    assert "the paper's -30% lies inside" in comparisons.reason.iloc[0]
    assert "the paper's -30% lies outside" in comparisons.reason.iloc[2]  # training latency: -20%
    costs = timings({"inference": -0.3, "training": -0.2}, {"inference": -0.4, "training": 0.2})
    verdicts, comparisons = ledger([EFFICIENCY], FIG_CONFIG, None, {"eff": costs})
    assert verdicts.verdict.item() == FAILS and comparisons.verdict.iloc[3] == FAILS  # training memory went up
    noisy = saves.assign(us_per_token=saves.us_per_token * np.tile([0.6, 1.0, 1.4], 4))
    verdicts, _ = ledger([EFFICIENCY], FIG_CONFIG, None, {"eff": noisy})
    assert verdicts.verdict.item() == UNDECIDED
    verdicts, _ = ledger([EFFICIENCY], FIG_CONFIG, None, {"eff": timings({"inference": -0.3, "training": -0.3},
                                                                          {"inference": -0.4, "training": -0.4}, 1)})
    assert verdicts.verdict.item() == UNDECIDED and "fewer than 2 repeats" in verdicts.evidence.item()


def test_a_claim_not_run_at_this_scale_says_so():
    cfg = config(t=["mole", "nla"])
    claims = [claim("absent", {"kind": "above", "table": "t6", "variant": "mole", "others": ["nla"]}),
              claim("no-variant", {"kind": "above", "table": "t", "variant": "mole", "others": ["tau9"]})]
    verdicts, comparisons = ledger(claims, cfg, per_example({"mole": 1, "nla": 0}))
    assert list(verdicts.verdict) == [UNDECIDED, UNDECIDED] and comparisons.empty
    assert list(verdicts.evidence) == ["not run at this scale: t6", "not run at this scale: tau9 in t"]


def test_settings_come_from_the_config_and_the_check():
    assert settings({}).confidence == 0.95 and settings({}).delta == 1.0 and settings({}).min_seeds == 2
    s = settings({"claims": {"confidence": 0.9, "delta": 2.0, "min_seeds": 3}}, {"delta": 0.05})
    assert (s.confidence, s.delta, s.min_seeds) == (0.9, 0.05, 3)
    scores = per_example({"mole": 10, "nla": 0, "lorahub": 2})
    cfg = {**config(t=["mole", "nla", "lorahub"]), "claims": {"min_seeds": 4}}
    assert decide(ABOVE, scores, cfg)[1].startswith("1 more seed(s) needed")


# ---- adapters ------------------------------------------------------------------------------------------------------

def evaluation(root, variant, group, seed, task, scores):
    """An evaluation folder as the evaluate rule writes it: {task}.json and {task}.predictions.jsonl."""
    d = root / "metrics" / variant / group / f"seed{seed}"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{task}.json").write_text(json.dumps({"variant": variant, "group": group, "seed": seed, "task": task,
                                                "metrics": {m: 0 for m in scores[0]}}))
    (d / f"{task}.predictions.jsonl").write_text("".join(json.dumps({"id": i, "prediction": "", "scores": s}) + "\n"
                                                         for i, s in enumerate(scores)))
    return str(d)


def test_nlp_scores_average_the_metrics_and_repeat_per_task_methods(tmp_path):
    dirs = [evaluation(tmp_path, "mole", "g", 1, "t1", [{"rouge1": 10, "rougeL": 20}, {"rouge1": 0, "rougeL": 0}]),
            evaluation(tmp_path, "single", "t1", 1, "t1", [{"rouge1": 50, "rougeL": 70}, {"rouge1": 1, "rougeL": 3}])]
    cfg = {"groups": {"g": ["t1", "t2"], "h": ["t1"], "k": ["t2"]}, "variants": VARIANTS}
    scores = nlp_scores(cfg, dirs, ["g", "h", "k"])
    mine = scores.set_index(["variant", "group", "example"]).value
    assert mine["mole", "g", "0"] == 15 and mine["mole", "g", "1"] == 0
    assert mine["single", "g", "0"] == 60 and mine["single", "h", "1"] == 2  # repeated under each group of t1
    assert set(scores.group) == {"g", "h"} and set(scores.seed) == {1}


def test_write_ledger_from_evaluation_folders_and_figure_csvs(tmp_path):
    import yaml

    from molebench.report.claims import write_ledger

    gen, dirs = np.random.default_rng(0), []
    for variant, shift in (("zero-shot", -20), ("single", 10), ("mole", 5), ("nla", 0)):
        for seed in [1] if variant == "zero-shot" else S:
            for task in TASKS:
                scores = [{"exact_match": 50 + shift + x} for x in gen.normal(0, 5, 30)]
                group = task if variant in ("zero-shot", "single") else "g"
                dirs.append(evaluation(tmp_path, variant, group, seed, task, scores))
    pd.DataFrame([{"variant": v, "seed": s, "step": step, "gate_entropy": e + 0.01 * s}
                  for v, e in (("mole", 1.0), ("nla", 0.5)) for s in S for step in range(4)]).to_csv(
        tmp_path / "fig5.csv", index=False)
    claims_file = tmp_path / "claims.yaml"
    claims_file.write_text(yaml.safe_dump([claim("above", {**ABOVE, "table": "t", "others": ["nla"]}),
                                           claim("entropy", {**ENTROPY["check"], "variant": "mole",
                                                             "others": ["nla"]})]))
    cfg = {**config(t=["mole", "nla"]), "figures": {"fig5": {"variants": ["mole", "nla"]}}}
    write_ledger(cfg, dirs, {"fig5": str(tmp_path / "fig5.csv")}, [], [], load_claims(claims_file),
                 str(tmp_path / "l.csv"), str(tmp_path / "c.csv"))
    verdicts, comparisons = pd.read_csv(tmp_path / "l.csv"), pd.read_csv(tmp_path / "c.csv")
    assert list(verdicts.verdict) == [HOLDS, HOLDS] and list(verdicts.page) == ["t.html", "fig5.html"]
    assert list(comparisons.columns) == COMPARISON_COLUMNS
    assert comparisons.n_examples.tolist() == [30, 1] and comparisons.n_seeds.tolist() == [3, 3]
    assert comparisons.estimate.iloc[0] == pytest.approx(5, abs=1.5)


def test_existing_ledger_leaves_out_the_claims_whose_results_are_missing(tmp_path):
    """A partial run (here: nothing ran): every claim whose inputs are absent says so, naming one missing input, and
    gets no verdict; a claim this scale does not run at all says that instead."""
    from molebench.config import load_config
    from molebench.report.claims import existing_ledger

    cfg = {**load_config(Path(__file__).parents[1] / "config/smoke.yaml"), "results_dir": str(tmp_path / "results")}
    left = dict(existing_ledger(cfg, str(tmp_path / "l.csv"), str(tmp_path / "c.csv")))
    verdicts = pd.read_csv(tmp_path / "l.csv").set_index("id")
    assert sorted(verdicts.index) == sorted(c["id"] for c in load_claims()) and len(left) >= 10
    assert set(verdicts.verdict) == {UNDECIDED}
    for claim, evidence in verdicts.evidence.items():
        assert evidence.startswith("not run in these results" if claim in left else "not run at this scale"), claim
    assert all(missing and all(p.startswith(str(tmp_path)) for p in missing) for missing in left.values())
    assert pd.read_csv(tmp_path / "c.csv").empty


def test_ramole_scores_score_each_sample_and_query(tmp_path):
    cfg = {"ramole": {"seed": 1, "pool": {"qa": ["bigbench:a", "bigbench:b"], "math": ["bigbench:c"]},
                      "retriever": {"finetune_tasks": ["a"]}}}
    run = tmp_path / "ramole" / "seed7"  # a run's folder names its seed
    for method, right in (("ramole", True), ("mixture", False)):
        (run / "eval" / method).mkdir(parents=True)
        (run / "eval" / method / "iid.predictions.jsonl").write_text("".join(
            json.dumps({"id": f"{t}-0", "task": t, "prediction": "x y" if right else "z",
                        "references": ["x y"]}) + "\n" for t in "abc"))
    queries = {"a-0": {"task": "a", "split": "test", "iid": ["a", "b", "c"], "ood": ["b", "c", "a"]},
               "c-0": {"task": "c", "split": "test", "iid": ["a", "c", "b"], "ood": ["a", "b"]},
               "a-9": {"task": "a", "split": "train", "iid": ["a"], "ood": ["b"]}}
    (run / "retrieval.json").write_text(json.dumps({e: {"k": 3, "queries": queries}
                                                    for e in ("pretrained", "finetuned")}))
    out = ramole_scores(cfg, [str(run / "retrieval.json")], [str(run / "eval" / m) for m in ("ramole", "mixture")])
    assert {int(s) for table in out.values() for s in table.seed} == {7}
    mixed = out["ramole_mixed_iid"].set_index(["variant", "task"])
    assert mixed.value["ramole", "a"] == 100 and mixed.value["mixture", "c"] == 0  # mean of exact match and ROUGE-L
    assert dict(zip(mixed.loc["ramole"].index, mixed.loc["ramole"].group)) == {"a": "qa", "b": "qa", "c": "math"}
    assert out["ramole_mixed_ood"].empty
    retrieval = out["ramole_retrieval"].set_index(["variant", "example"])
    # a-0: IID top-1 and top-3 right, OOD top-1 (b, same domain) and top-3 right; c-0: IID top-3 only, OOD none
    assert retrieval.value["finetuned", "a-0"] == 100 and retrieval.value["finetuned", "c-0"] == 25
    assert list(retrieval.loc["finetuned"].group) == ["fine-tuning tasks", "held-out tasks"]


RAMOLE_CONFIG = {"groups": {}, "tables": {}, "ramole": {"methods": dict.fromkeys(
    ("ramole", "mixture", "fusion", "selection", "oracle"))}}
BEATS = claim("beats", {"kind": "above", "table": "ramole_mixed_ood", "groups": ["all"], "variant": "ramole",
                        "others": ["mixture", "fusion", "selection"]})


@pytest.mark.parametrize("ramole,seeds,verdict", [(10, S, HOLDS), (-10, S, FAILS), (10, [1], UNDECIDED)])
def test_ramole_claim_over_its_samples(ramole, seeds, verdict):
    scores = per_example({"ramole": ramole, "mixture": 0, "fusion": 1, "selection": 2}, group="qa", seeds=seeds)
    verdicts, comparisons = ledger([BEATS], RAMOLE_CONFIG, None, None, {"ramole_mixed_ood": scores})
    assert verdicts.verdict.item() == verdict
    assert list(comparisons.comparison) == [f"all: ramole > {m}" for m in ("mixture", "fusion", "selection")]
    if len(seeds) == 1:  # the mini run: one seed
        assert verdicts.evidence.item().startswith("1 more seed(s) needed")


def test_claims_on_pool_compositions_are_not_testable_when_the_pool_teaches_too_little():
    scores = per_example({"ramole": 10, "mixture": 0, "fusion": 1, "selection": 2}, group="qa")
    retrieval = per_example({"finetuned": 10, "pretrained": 0}, group="held-out tasks")
    check = {"kind": "above", "table": "ramole_retrieval", "groups": ["held-out tasks"], "variant": "finetuned",
             "others": ["pretrained"]}
    data = {"ramole_mixed_ood": scores, "ramole_retrieval": retrieval}
    for passes, verdicts in (([True, True, False], [HOLDS, HOLDS]), ([True, False, False], [NOT_TESTABLE, HOLDS])):
        pool = pd.DataFrame({"lora": ["a", "b", "c"], "passes": passes})
        out, _ = ledger([BEATS, claim("ft", check)], RAMOLE_CONFIG, None, None, data, pool_gain=pool)
        assert list(out.verdict) == verdicts  # retrieval accuracy does not depend on what the LoRAs learned
    assert out.evidence.iloc[0] == ("the composed LoRAs teach too little: 1 of 3 pool LoRAs pass (33%) their own "
                                    "task's gain check, fewer than 50%")
    table6 = {"scaling": {"group": "g", "sizes": [8, 24]}, "groups": {}, "variants": {},
              "tables": {"table6": {"groups": ["g-n8", "g-n24"], "variants": ["mole", "nla-output"]}}}
    sized = {"kind": "best_at_every_size", "table": "table6", "variant": "mole", "others": ["nla-output"]}
    assert _on_pool(sized, table6) and not _on_pool(check, RAMOLE_CONFIG)  # Table 6 composes pool LoRAs too
    # a claim whose variants did not run says so first
    out, _ = ledger([BEATS], {**RAMOLE_CONFIG, "ramole": {"methods": {"ramole": None}}}, pool_gain=pool)
    assert out.evidence.item().startswith("not run at this scale")


def test_ramole_claim_without_a_ramole_block_or_method_is_not_run_at_this_scale():
    verdicts, _ = ledger([BEATS], {"groups": {}, "tables": {}})
    assert verdicts.evidence.item() == "not run at this scale: ramole_mixed_ood (the config has no ramole: block)"
    fewer = {**RAMOLE_CONFIG, "ramole": {"methods": {"ramole": None, "mixture": None}}}
    verdicts, _ = ledger([BEATS], fewer)
    assert verdicts.verdict.item() == UNDECIDED
    assert verdicts.evidence.item() == "not run at this scale: fusion, selection in ramole_mixed_ood"


def test_retrieval_claim_compares_embedders_per_query_group():
    scores = pd.concat([per_example({"finetuned": 10, "pretrained": 0}, group=g, rng=i)
                        for i, g in enumerate(("fine-tuning tasks", "held-out tasks"))])
    scores = scores.assign(task=scores.group + "/" + scores.task)
    check = {"kind": "above", "table": "ramole_retrieval", "groups": ["fine-tuning tasks", "held-out tasks"],
             "variant": "finetuned", "others": ["pretrained"]}
    verdicts, comparisons = ledger([claim("ft", check)], RAMOLE_CONFIG, None, None, {"ramole_retrieval": scores})
    assert verdicts.verdict.item() == HOLDS and len(comparisons) == 2
    assert comparisons.estimate.iloc[0] == pytest.approx(10, abs=1.5)
    # every pool task fine-tuned: the held-out row has no queries, and the claim rests on the row that has them
    tuned = scores[scores.group == "fine-tuning tasks"]
    verdicts, comparisons = ledger([claim("ft", check)], RAMOLE_CONFIG, None, None, {"ramole_retrieval": tuned})
    assert verdicts.verdict.item() == HOLDS and list(comparisons.comparison) == [
        "fine-tuning tasks: finetuned > pretrained"]
    verdicts, _ = ledger([claim("ft", check)], RAMOLE_CONFIG, None, None, {"ramole_retrieval": tuned.iloc[:0]})
    assert verdicts.evidence.item().startswith("not run at this scale: ramole_retrieval has no queries")


def test_ramole_claims_name_their_groups_and_the_configs_methods(tmp_path):
    import yaml

    from molebench.config import load_config
    from molebench.report.claims import inputs as claims_inputs
    from molebench.report.claims import ramole_variants
    from tests.conftest import SCHEMA

    claims = [c for c in load_claims() if c["paper"] == "RAMoLE"]
    assert {c["check"]["table"] for c in claims} == {"ramole_mixed_iid", "ramole_mixed_ood", "ramole_retrieval"}
    repo = SCHEMA.parents[2]
    for name, config in [("mini", mini_config()), ("smoke", yaml.safe_load((repo / "config/smoke.yaml").read_text()))]:
        for c in claims:
            named = [c["check"]["variant"], *c["check"]["others"]]
            assert set(named) <= set(ramole_variants(c["check"]["table"], config)), (name, c["id"])
    smoke = load_config(repo / "config" / "smoke.yaml")
    assert smoke["claims"] == {"confidence": 0.95, "delta": 1.0, "min_seeds": 2}  # the schema's defaults
    assert claims_inputs(smoke)[2] == ["results/smoke/ramole/seed1/retrieval.json",
                                       *[f"results/smoke/ramole/seed1/eval/{m}" for m in smoke["ramole"]["methods"]]]
    two = {**smoke, "ramole": {**smoke["ramole"], "seeds": [1, 2]}}
    assert [p for p in claims_inputs(two)[2] if p.endswith(".json")] == [
        f"results/smoke/ramole/seed{s}/retrieval.json" for s in (1, 2)]
    assert claims_inputs({k: v for k, v in smoke.items() if k != "ramole"})[2] == []
    bad = tmp_path / "claims.yaml"
    bad.write_text(yaml.safe_dump([{**claims[0], "check": {k: v for k, v in claims[0]["check"].items()
                                                          if k != "groups"}}]))
    with pytest.raises(ValueError, match="must name its `groups`"):
        load_claims(bad)


def test_claims_inputs_include_the_gain_checks_references():
    from molebench.config import load_config
    from molebench.nlp.plan import evaluation_dirs
    from molebench.report.claims import inputs as claims_inputs
    from tests.conftest import SCHEMA

    smoke = load_config(SCHEMA.parents[2] / "config" / "smoke.yaml")
    evaluations = claims_inputs(smoke)[0]
    for variant in ("zero-shot", "single"):
        groups = smoke["tables"]["table6"]["groups"]
        assert set(evaluation_dirs(smoke, variant, groups)) <= set(evaluations)


# ---- text-to-image tables (config t2i.tables, read from the metric folders) -------------------------------------

T2I_TABLES = {"table1": {"kind": "per_composition", "sizes": [3], "columns": {"NLA": "nla", "MoLE": "l-mole"}},
              "table10": {"kind": "per_size", "sizes": [3, 4], "columns": {"NLA": "nla", "MoLE": "l-mole"}}}


def t2i_rows(bonus, seeds=S, noise=0.001):
    """Metric rows as molebench.t2i.report.load_metrics gives them: four compositions per size; MoLE is `bonus`
    above NLA in text alignment on 4 subjects only, and in image alignment on every subject."""
    gen, rows = np.random.default_rng(0), []
    for size in (3, 4):
        for c in range(4):
            for variant in ("nla", "l-mole"):
                for seed in seeds:
                    mine = variant == "l-mole"
                    text = 0.5 + bonus * (mine and size == 4) + gen.normal(0, noise)
                    for k in range(size):
                        rows.append({"variant": variant, "composition": f"c{size}{c}", "size": size, "seed": seed,
                                     "concept": k + 1, "subject": f"s{k}", "presence": 0.5, "text_alignment": text,
                                     "image_alignment": 0.4 + bonus * mine + gen.normal(0, noise)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("table,bonus,seeds,verdict,groups", [
    ("t2i:table10", 0.1, S, FAILS, ["3 subjects: text_alignment", "3 subjects: image_alignment",
                                    "4 subjects: text_alignment", "4 subjects: image_alignment"]),
    ("t2i:table1", -0.1, S, FAILS, ["text_alignment", "image_alignment"]),
    ("t2i:table1", 0.1, [1], UNDECIDED, ["text_alignment", "image_alignment"]),  # the mini run: one seed
])
def test_t2i_claim_is_checked_per_metric_and_size(table, bonus, seeds, verdict, groups):
    check = {"kind": "above", "table": table, "metrics": ["text_alignment", "image_alignment"],
             "variant": "l-mole", "others": ["nla"]}
    verdicts, comparisons = ledger([claim("t2i", check)], {"groups": {}, "tables": {}, "t2i": {"tables": T2I_TABLES}},
                                   None, None, None, t2i_rows(bonus, seeds))
    assert verdicts.verdict.item() == verdict
    assert list(comparisons.comparison) == [f"{g}: l-mole > nla" for g in groups]
    if table == "t2i:table10":  # no gain in text alignment on 3 subjects; x 100, so 0.1 is 10 points elsewhere
        assert list(comparisons.verdict) == [FAILS, HOLDS, HOLDS, HOLDS]
        assert comparisons.estimate.iloc[3] == pytest.approx(10, abs=0.5)
        assert comparisons.n_examples.iloc[3] == 4  # subjects of a composition


def test_t2i_claims_are_not_testable_while_a_precondition_fails(tmp_path):
    """A composition claim on a world whose base model or subject LoRAs cannot draw what is asked is not testable,
    whatever its numbers; with every precondition met the numbers decide."""
    from molebench.t2i.preconditions import table

    def checks(found):
        files = []
        for k, (name, hit) in enumerate([("base model: prompted objects drawn", found), ("subject LoRA alone: s0", 16)]):
            files.append(tmp_path / f"{k}.json")
            files[-1].write_text(json.dumps({"check": name, "found": hit, "total": 16, "images": 16}))
        return table([str(f) for f in files], min_share=0.8)

    check = {"kind": "above", "table": "t2i:table1", "metrics": ["text_alignment", "image_alignment"],
             "variant": "l-mole", "others": ["nla"]}
    config = {"groups": {}, "tables": {}, "t2i": {"tables": T2I_TABLES}}
    low = checks(found=12)
    assert list(low.met) == [False, True] and low.share.iloc[0] == 0.75
    verdicts, _ = ledger([claim("t2i", check)], config, None, None, None, t2i_rows(0.1), t2i_preconditions=low)
    assert verdicts.verdict.item() == NOT_TESTABLE
    assert "base model: prompted objects drawn 12/16 (75%)" in verdicts.evidence.item()
    met, _ = ledger([claim("t2i", check)], config, None, None, None, t2i_rows(0.1), t2i_preconditions=checks(13))
    ungated, _ = ledger([claim("t2i", check)], config, None, None, None, t2i_rows(0.1))
    assert met.verdict.item() == ungated.verdict.item() == FAILS  # no gain in text alignment (t2i_rows)


def test_t2i_claims_name_the_configs_tables_and_variants(tmp_path):
    import yaml

    from molebench.config import load_config
    from molebench.report.claims import inputs as claims_inputs
    from molebench.t2i.plan import evaluations
    from tests.conftest import SCHEMA

    claims = [c for c in load_claims() if c["check"].get("table", "").startswith("t2i:")]
    assert {c["source"] for c in claims} == {"Table 1", "Table 9 (V&L)", "Table 10"}
    repo = SCHEMA.parents[2]
    mini = mini_config()
    for c in claims:
        spec = mini["t2i"]["tables"][c["check"]["table"][len("t2i:"):]]
        named = [c["check"].get("variant"), *c["check"].get("others", []), *c["check"].get("variants", [])]
        assert set(filter(None, named)) <= set(spec["columns"].values()), c["id"]
    smoke = load_config(repo / "config" / "smoke.yaml")
    assert claims_inputs(smoke)[3] == evaluations(smoke["t2i"], "results/smoke") != []
    assert claims_inputs({k: v for k, v in smoke.items() if k != "t2i"})[3] == []
    bad = tmp_path / "claims.yaml"
    bad.write_text(yaml.safe_dump([{**claims[0], "check": {**claims[0]["check"], "metrics": ["fid"]}}]))
    with pytest.raises(ValueError, match="must name its `metrics`"):
        load_claims(bad)


# ---- the claims file -----------------------------------------------------------------------------------------------

def test_the_ledger_file_names_only_known_kinds_and_the_configs_variants():
    claims = load_claims()
    assert len({c["id"] for c in claims}) == len(claims)
    assert {c["check"]["kind"] for c in claims if c["source"] == "Table 6"} == {
        "best_at_every_size", "lead_grows", "all_decline_at_largest"}
    config = mini_config()
    for c in claims:
        check = c["check"]
        source = check.get("table") or check.get("figure")
        spec = {**config["tables"], **config["figures"]}.get(source)
        if spec is None:
            continue
        named = [check.get("variant"), *check.get("others", []), *check.get("variants", [])]
        assert set(filter(None, named)) <= set(spec["variants"]), c["id"]


def test_a_config_without_the_extensions_gates_no_claim_on_them():
    """The default mini sitting has no `t2i:` or `ramole:` block: its partial ledger asks for no precondition file of
    the text-to-image world or the pool's gain check (it once looked up config["t2i"] and stopped)."""
    default = {**mini_config(), "results_dir": "results"}
    for key in ("t2i", "ramole", "scaling"):
        default.pop(key)
    t2i_claim = next(c for c in load_claims() if c["check"].get("table", "").startswith("t2i:"))
    assert gate_files(default, t2i_claim) == []
    assert gate_files({**mini_config(), "results_dir": "results"}, t2i_claim) == ["results/t2i/preconditions.csv"]
