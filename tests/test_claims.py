"""claims.py: the verdict rule on hand-made scores, every check kind, and the ledger file itself."""

import pandas as pd
import pytest

from molebench.report.claims import FAILS, HOLDS, UNDECIDED, combine, compare, ledger, load_claims

S = [1, 2, 3]


def seeds(*values):
    return pd.Series(values, index=S[:len(values)], dtype=float)


@pytest.mark.parametrize("above,below,verdict", [
    (seeds(5, 6, 7), seeds(4, 5, 6), HOLDS),
    (seeds(4, 5, 6), seeds(5, 6, 7), FAILS),
    (seeds(4, 5, 6), seeds(4, 5, 6), FAILS),        # a tie is not "above"
    (seeds(5, 4, 7), seeds(4, 5, 6), UNDECIDED),    # the seeds disagree
    (seeds(5, 6), seeds(4, 5), UNDECIDED),          # too few seeds
    (pd.Series([3.0], index=[1]), seeds(1, 2, 2.5), HOLDS),  # an unseeded method pairs with every seed
])
def test_compare_applies_the_stated_rule(above, below, verdict):
    assert compare(above, below)[0] == verdict


def test_one_failure_fails_the_claim_and_all_must_hold():
    assert combine([HOLDS, HOLDS]) == HOLDS
    assert combine([HOLDS, UNDECIDED]) == UNDECIDED
    assert combine([HOLDS, UNDECIDED, FAILS]) == FAILS
    assert combine([]) == UNDECIDED


# per variant: its per-seed offsets on every (task, metric) row of group g
SCORES = {"mole": (10, 11, 12), "nla": (5, 6, 7), "noisy": (12, 5, 13), "m": (1, 2, 3), "l": (8, 9, 10),
          "b": (4, 5, 6), "n": (0, 1, 2)}
ROWS = {"g": [("t1", "accuracy"), ("t2", "rouge1")]}


def metrics():
    return pd.DataFrame([{"variant": v, "group": "g", "task": t, "metric": m, "seed": s, "value": x + (t == "t2")}
                         for v, xs in SCORES.items() for t, m in ROWS["g"] for s, x in zip(S, xs)])


CONFIG = {"groups": {"g": ["t1", "t2"]}, "figures": {"fig5": {"variants": ["bal", "nobal"]}},
          "tables": {"t3": {"groups": ["g"], "variants": ["mole", "nla", "noisy"]},
                     "t9": {"groups": ["g"], "variants": ["m", "l", "b", "n", "mole"]}}}


def claim(id_, check):
    return {"id": id_, "paper": "MoLE", "source": "Table", "claim": id_, "check": check}


def test_ledger_verdict_per_check_kind():
    entropy = pd.DataFrame([{"variant": v, "seed": s, "step": step, "gate_entropy": e - step * (v == "nobal")}
                            for v, e in (("bal", 1.0), ("nobal", 1.0)) for s in S for step in range(4)])
    claims = [claim("above", {"kind": "above", "table": "t3", "variant": "mole", "others": ["nla"]}),
              claim("undecided", {"kind": "above", "table": "t3", "variant": "mole", "others": ["nla", "noisy"]}),
              claim("falls", {"kind": "decreasing", "table": "t3", "variants": ["nla", "mole"]}),
              claim("middle", {"kind": "middle_best", "table": "t9", "variants": ["m", "l", "b", "n"]}),
              claim("end", {"kind": "middle_best", "table": "t9", "variants": ["mole", "l", "b", "n"]}),
              claim("entropy", {"kind": "figure_above", "figure": "fig5", "column": "gate_entropy",
                                "variant": "bal", "others": ["nobal"]}),
              claim("absent", {"kind": "above", "table": "t6", "variant": "mole", "others": ["nla"]}),
              claim("no-variant", {"kind": "above", "table": "t3", "variant": "mole", "others": ["tau9"]})]
    verdicts, comparisons = ledger(claims, CONFIG, metrics(), ROWS, {"fig5": entropy})
    got = dict(zip(verdicts.id, verdicts.verdict))
    assert got == {"above": HOLDS, "undecided": UNDECIDED, "falls": FAILS, "middle": HOLDS, "end": FAILS,
                   "entropy": HOLDS, "absent": UNDECIDED, "no-variant": UNDECIDED}
    assert verdicts.set_index("id").evidence["absent"] == "not run at this scale: t6"
    assert verdicts.set_index("id").evidence["no-variant"] == "not run at this scale: tau9 in t3"
    assert "11.5 vs 6.5" in comparisons[comparisons.id == "above"].evidence.item()  # group averages, over seeds


def test_the_ledger_file_names_only_known_kinds_and_the_configs_variants():
    import yaml

    from molebench.config import SCHEMA

    claims = load_claims()
    assert len({c["id"] for c in claims}) == len(claims)
    config = yaml.safe_load((SCHEMA.parents[2] / "config" / "config.yaml").read_text())
    for c in claims:
        check = c["check"]
        source = check.get("table") or check.get("figure")
        spec = {**config["tables"], **config["figures"]}.get(source)
        if spec is None:
            continue
        named = [check.get("variant"), *check.get("others", []), *check.get("variants", [])]
        assert set(filter(None, named)) <= set(spec["variants"]), c["id"]


def test_measured_figure_check_holds_row_by_row():
    data = pd.DataFrame({"shape": ["s", "s", "l"], "mode": ["inference", "training", "inference"],
                         "latency_vs_plain": [-0.3, -0.1, float("nan")], "memory_vs_plain": [-0.4, 0.2, None]})
    check = {"kind": "figure_below", "figure": "eff", "columns": ["latency_vs_plain", "memory_vs_plain"], "below": 0,
             "row_keys": ["shape", "mode"]}
    config = {"groups": {}, "tables": {}, "figures": {"eff": {"variants": []}}}
    verdicts, comparisons = ledger([claim("eff", check)], config, metrics(), ROWS, {"eff": data})
    assert verdicts.verdict.item() == FAILS  # training memory went up
    assert list(comparisons.verdict) == [HOLDS, HOLDS, HOLDS, FAILS]  # the unmeasured row is left out
    assert comparisons.comparison.iloc[3] == "shape s, mode training: memory_vs_plain < 0"


def test_best_differs_needs_a_crossing_every_seed_agrees_on():
    def per_task(values):  # variant -> task -> per-seed scores
        return pd.DataFrame([{"variant": v, "group": "g", "task": t, "metric": m, "seed": s, "value": x}
                             for v, tasks in values.items() for t, m in ROWS["g"] for s, x in zip(S, tasks[t])])

    config = {"groups": {"g": ["t1", "t2"]}, "tables": {"t5": {"groups": ["g"], "variants": ["low", "high"]}}}
    check = claim("ranges", {"kind": "best_differs", "table": "t5", "variants": ["low", "high"]})

    def verdict(values):
        return ledger([check], config, per_task(values), ROWS, {})[0].verdict.item()

    assert verdict({"low": {"t1": (5, 6, 7), "t2": (1, 2, 3)}, "high": {"t1": (1, 2, 3), "t2": (5, 6, 7)}}) == HOLDS
    assert verdict({"low": {"t1": (5, 6, 7), "t2": (5, 6, 7)}, "high": {"t1": (1, 2, 3), "t2": (1, 2, 3)}}) == FAILS
    # t2 prefers high on average but not in every seed
    assert verdict({"low": {"t1": (5, 6, 7), "t2": (4, 2, 3)}, "high": {"t1": (1, 2, 3), "t2": (9, 1, 4)}}) == UNDECIDED


# ---- RAMoLE's tables (built outside `tables:`, one seed per run) ----------------------------------------------

RAMOLE_METHODS = ("ramole", "mixture", "fusion", "selection", "oracle")
RAMOLE_CONFIG = {"groups": {}, "tables": {}, "ramole": {"methods": dict.fromkeys(RAMOLE_METHODS)}}


def mixed_tables(offsets, seeds=S):
    """A ramole_mixed_ood table per seed, stacked: method m scores offsets[m] + seed on every task and metric."""
    from molebench.ramole.report import ramole_mixed_table

    def result(m, s):
        return {"tasks": {t: {"domain": d, "metrics": {"exact_match": offsets[m] + s, "rougeL": offsets[m] + s + 1}}
                          for t, d in (("t1", "qa"), ("t2", "math"))}}
    return pd.concat([ramole_mixed_table({m: result(m, s) for m in offsets}, s) for s in seeds], ignore_index=True)


BEATS = claim("beats", {"kind": "above", "table": "ramole_mixed_ood", "groups": ["all"], "variant": "ramole",
                        "others": ["mixture", "fusion", "selection"]})


@pytest.mark.parametrize("offsets,seeds,verdict", [
    ({"ramole": 5, "mixture": 1, "fusion": 2, "selection": 3}, S, HOLDS),
    ({"ramole": 5, "mixture": 1, "fusion": 2, "selection": 6}, S, FAILS),  # selection above on every seed
    ({"ramole": 5, "mixture": 1, "fusion": 2, "selection": 3}, [1], UNDECIDED),  # the mini run: one seed
])
def test_ramole_claim_is_checked_over_the_ramole_table_seed_by_seed(offsets, seeds, verdict):
    verdicts, comparisons = ledger([BEATS], RAMOLE_CONFIG, metrics(), ROWS, {},
                                   {"ramole_mixed_ood": mixed_tables(offsets, seeds)})
    assert verdicts.verdict.item() == verdict
    assert list(comparisons.comparison) == [f"all: ramole > {m}" for m in ("mixture", "fusion", "selection")]
    if len(seeds) == 1:
        assert "fewer than 3 seeds" in comparisons.evidence.iloc[0]
    else:  # the overall average over tasks and both metrics, then over seeds
        assert comparisons.evidence.iloc[0].startswith("7.5 vs 3.5, 3 of 3 seeds above")


def test_ramole_claim_without_a_ramole_block_or_method_is_not_run_at_this_scale():
    verdicts, _ = ledger([BEATS], {"groups": {}, "tables": {}}, metrics(), ROWS, {})
    assert verdicts.evidence.item() == "not run at this scale: ramole_mixed_ood (the config has no ramole: block)"
    fewer = {**RAMOLE_CONFIG, "ramole": {"methods": {"ramole": None, "mixture": None}}}
    verdicts, _ = ledger([BEATS], fewer, metrics(), ROWS, {}, {"ramole_mixed_ood": mixed_tables({"ramole": 1})})
    assert verdicts.verdict.item() == UNDECIDED
    assert verdicts.evidence.item() == "not run at this scale: fusion, selection in ramole_mixed_ood"


def test_retrieval_claim_compares_embedders_per_query_task_row():
    from molebench.ramole.report import ramole_retrieval_table

    def accuracy(bonus):
        return {part: {"iid_top1": 10 + bonus, "iid_top3": 20 + bonus, "ood_top1": 5.0, "ood_top3": 15.0,
                       "queries": 6} for part in ("fine-tuning tasks", "held-out tasks", "all tasks")}
    table = pd.concat([ramole_retrieval_table({"pretrained": accuracy(0), "finetuned": accuracy(s)}, s) for s in S])
    check = {"kind": "above", "table": "ramole_retrieval", "groups": ["fine-tuning tasks", "held-out tasks"],
             "variant": "finetuned", "others": ["pretrained"]}
    verdicts, comparisons = ledger([claim("ft", check)], RAMOLE_CONFIG, metrics(), ROWS, {},
                                   {"ramole_retrieval": table})
    assert verdicts.verdict.item() == HOLDS and len(comparisons) == 2
    assert comparisons.evidence.iloc[0].startswith("13.5 vs 12.5")  # mean of the four accuracies, not `queries`


def test_ramole_claims_name_their_groups_and_the_configs_methods(tmp_path):
    import yaml

    from molebench.config import SCHEMA, load_config
    from molebench.report.claims import inputs as claims_inputs
    from molebench.report.claims import needed_ramole, ramole_variants

    claims = [c for c in load_claims() if c["paper"] == "RAMoLE"]
    assert {c["check"]["table"] for c in claims} == {"ramole_mixed_iid", "ramole_mixed_ood", "ramole_retrieval"}
    repo = SCHEMA.parents[2]
    for name in ("config.yaml", "smoke.yaml"):
        config = yaml.safe_load((repo / "config" / name).read_text())
        for c in claims:
            named = [c["check"]["variant"], *c["check"]["others"]]
            assert set(named) <= set(ramole_variants(c["check"]["table"], config)), (name, c["id"])
    smoke = load_config(repo / "config" / "smoke.yaml")
    assert claims_inputs(smoke)[2] == [f"results/smoke/tables/{t}.csv" for t in needed_ramole(load_claims(), smoke)]
    assert len(claims_inputs(smoke)[2]) == 3
    assert claims_inputs({k: v for k, v in smoke.items() if k != "ramole"})[2] == []
    bad = tmp_path / "claims.yaml"
    bad.write_text(yaml.safe_dump([{**claims[0], "check": {k: v for k, v in claims[0]["check"].items()
                                                          if k != "groups"}}]))
    with pytest.raises(ValueError, match="must name its `groups`"):
        load_claims(bad)
# MoLE Table 6, the paper's own averages (8, 24, 48, 128 LoRAs) as three seeds each, 0.1 apart
PAPER_T6 = {"mole": (36.6, 38.7, 39.4, 38.5), "nla": (32.7, 36.8, 34.4, 34.1), "lorahub": (33.9, 37.1, 36.9, 35.5),
            "pems": (33.7, 36.9, 34.6, 34.9)}
SIZES = ["n8", "n24", "n48", "n128"]


def scaling_ledger(scores, check=None):
    rows = [{"variant": v, "group": g, "task": "t", "metric": "em", "seed": s, "value": x + 0.1 * s}
            for v, xs in scores.items() for g, x in zip(SIZES, xs) for s in S]
    config = {"groups": {g: ["t"] for g in SIZES}, "tables": {"t6": {"groups": SIZES, "variants": list(scores)}}}
    check = check or {"kind": "scaling", "table": "t6", "variant": "mole", "others": ["nla", "lorahub", "pems"]}
    return ledger([claim("t6", check)], config, pd.DataFrame(rows), {g: [("t", "em")] for g in SIZES}, {})


def test_scaling_claim_holds_on_the_papers_table6_and_fails_when_it_should():
    verdicts, comparisons = scaling_ledger(PAPER_T6)
    assert verdicts.verdict.item() == HOLDS
    # one lead comparison (48+128 against 8+24) and one decline per method; PEMs declines from its best (24 LoRAs),
    # not from 48, where the paper has it lower than at 128
    assert list(comparisons.comparison) == ["mole's lead over the best of nla, lorahub, pems: n48+n128 > n8+n24",
                                            "mole: n48 > n128", "nla: n24 > n128", "lorahub: n24 > n128",
                                            "pems: n24 > n128"]
    assert "2.8 vs 2.2" in comparisons.evidence.iloc[0]  # margins (2.5 + 3.0) / 2 against (2.7 + 1.6) / 2
    shrinking = {**PAPER_T6, "mole": (39.0, 39.5, 38.0, 37.5)}  # lead 5.1, 2.4 then 1.1, 2.0: it shrinks
    verdicts, comparisons = scaling_ledger(shrinking)
    assert verdicts.verdict.item() == FAILS and comparisons.verdict.iloc[0] == FAILS
    rising = {**PAPER_T6, "nla": (32.7, 36.8, 34.4, 37.0)}  # NLA best at 128
    verdicts, comparisons = scaling_ledger(rising)
    assert verdicts.verdict.item() == FAILS
    assert dict(zip(comparisons.comparison, comparisons.verdict))["nla: n24 > n128"] == FAILS


def test_scaling_claim_pairs_seeds_and_wants_three():
    noisy = [{"variant": v, "group": g, "task": "t", "metric": "em", "seed": s,
              "value": x + (3.0 if (v, g, s) == ("mole", "n128", 2) else 0.0)}
             for v, xs in PAPER_T6.items() for g, x in zip(SIZES, xs) for s in S]
    config = {"groups": {g: ["t"] for g in SIZES}, "tables": {"t6": {"groups": SIZES, "variants": list(PAPER_T6)}}}
    check = {"kind": "scaling", "table": "t6", "variant": "mole", "others": ["nla", "lorahub", "pems"]}
    verdicts, comparisons = ledger([claim("t6", check)], config, pd.DataFrame(noisy), {g: [("t", "em")] for g in SIZES},
                                   {})
    assert dict(zip(comparisons.comparison, comparisons.verdict))["mole: n48 > n128"] == UNDECIDED  # seed 2 rose
    assert verdicts.verdict.item() == UNDECIDED
    few = pd.DataFrame([r for r in noisy if r["seed"] < 3])
    verdicts, _ = ledger([claim("t6", check)], config, few, {g: [("t", "em")] for g in SIZES}, {})
    assert verdicts.verdict.item() == UNDECIDED  # fewer than 3 seeds


# ---- text-to-image tables (config t2i.tables, read from the metric folders) -------------------------------------

T2I_TABLES = {"table1": {"kind": "per_composition", "sizes": [3], "columns": {"NLA": "nla", "MoLE": "l-mole"}},
              "table10": {"kind": "per_size", "sizes": [3, 4], "columns": {"NLA": "nla", "MoLE": "l-mole"}}}


def t2i_rows(bonus, seeds=S):
    """Metric rows as molebench.t2i.report.load_metrics gives them: two compositions per size; MoLE is `bonus`
    above NLA in text alignment on 4 subjects only, and in image alignment only on the first subject."""
    rows = []
    for size in (3, 4):
        for c in range(2):
            for variant in ("nla", "l-mole"):
                for seed in seeds:
                    mine = variant == "l-mole"
                    for k in range(size):
                        rows.append({"variant": variant, "composition": f"c{size}{c}", "size": size, "seed": seed,
                                     "concept": k + 1, "subject": f"s{k}", "presence": 0.5,
                                     "text_alignment": 0.5 + 0.01 * seed + bonus * (mine and size == 4),
                                     "image_alignment": 0.4 + bonus * (mine and k == 0)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("table,bonus,seeds,verdict,groups", [
    ("t2i:table10", 0.1, S, FAILS, ["3 subjects: text_alignment", "3 subjects: image_alignment",
                                    "4 subjects: text_alignment", "4 subjects: image_alignment"]),
    ("t2i:table1", 0.1, S, FAILS, ["text_alignment", "image_alignment"]),  # the tie in text alignment fails
    ("t2i:table1", -0.1, [1], UNDECIDED, ["text_alignment", "image_alignment"]),  # the mini run: one seed
])
def test_t2i_claim_is_checked_per_metric_and_size_seed_by_seed(table, bonus, seeds, verdict, groups):
    check = {"kind": "above", "table": table, "metrics": ["text_alignment", "image_alignment"],
             "variant": "l-mole", "others": ["nla"]}
    verdicts, comparisons = ledger([claim("t2i", check)], {"groups": {}, "tables": {}, "t2i": {"tables": T2I_TABLES}},
                                   metrics(), ROWS, {}, None, t2i_rows(bonus, seeds))
    assert verdicts.verdict.item() == verdict
    assert list(comparisons.comparison) == [f"{g}: l-mole > nla" for g in groups]
    if table == "t2i:table10":
        assert list(comparisons.verdict) == [FAILS, HOLDS, HOLDS, HOLDS]
        # x 100; the image alignment of 4 subjects averages the one better subject in: 40 + 10 / 4
        assert comparisons.evidence.iloc[3].startswith("42.5 vs 40.0, 3 of 3 seeds above")


def test_t2i_claims_name_the_configs_tables_and_variants(tmp_path):
    import yaml

    from molebench.config import SCHEMA, load_config
    from molebench.report.claims import inputs as claims_inputs
    from molebench.t2i.plan import evaluations

    claims = [c for c in load_claims() if c["check"].get("table", "").startswith("t2i:")]
    assert {c["source"] for c in claims} == {"Table 1", "Table 9 (V&L)", "Table 10"}
    repo = SCHEMA.parents[2]
    mini = yaml.safe_load((repo / "config" / "config.yaml").read_text())
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
