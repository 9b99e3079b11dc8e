"""Every claim of data/paper/claims.yaml checked on the papers' own numbers: per-example scores built from the claim's
paper CSV (molebench.report.claims.paper_scores, the ledger's own mapping of our variants to the paper's methods), with
many examples per task and several seeds of tiny, seeded noise centred so that every group mean is the published
value, decided by the ledger's own dispatch (claims.run_check) on molebench.report.evidence's rule. Each claim must
hold, except those the paper's own tables contradict (CONTRADICTED, with the reason; docs/methods.md, "Claims on the
papers' own numbers") and those whose paper gives no numbers here (NOT_CHECKABLE)."""

import numpy as np
import pandas as pd
import pytest
import yaml

from molebench.nlp import plan
from molebench.report.claims import (
    PAPER_METHODS,
    SCORE_COLUMNS,
    ledger,
    load_claims,
    paper_file,
    paper_gaps,
    paper_inputs,
    paper_scores,
    run_check,
    settings,
)
from molebench.report.evidence import FAILS, HOLDS, group_score
from tests.conftest import SCHEMA, mini_config

REPO = SCHEMA.parents[2]
# the paper scale first; Table 6 runs at the mini scale only (its skill-world extension)
CONFIGS = {"paper": plan.expand(yaml.safe_load((REPO / "config/paper.yaml").read_text())),
           "config": plan.expand(mini_config())}
N_EXAMPLES, SEEDS, NOISE, SEED_SD = 400, [1, 2, 3], 0.05, 0.01  # points; every published gap checked is >= 0.2

NOT_CHECKABLE = {
    "balance-keeps-entropy-up": "Figure 5 is a plot; the paper prints no gate entropies",
    "plain-sum-breaks-down": "Observation 1 gives no numbers, and no table of the paper has a plain-sum column",
    "layer-wise-gating-beats-network-wise": "the paper's granularity numbers (Table 9) are text-to-image only",
    "ramole-beats-baselines-iid": "the project's RAMoLE source has no tables (data/paper/README.md)",
    "ramole-beats-baselines-ood": "the project's RAMoLE source has no tables (data/paper/README.md)",
    "retriever-finetuning-helps": "the project's RAMoLE source has no tables (data/paper/README.md)",
}
CONTRADICTED = {  # claim id -> (the comparison the paper's own table contradicts, why)
    "mole-ahead-with-more-subjects-t2i": (
        "3 subjects: image_alignment: l-mole > nla",
        ("Table 10 prints NLA 0.759 against MoLE 0.757 in image alignment at 3 subjects, but its own average row "
         "(NLA 0.698 over 3-6 subjects) implies 0.694 there, Table 2's value for the same setting: likely a typo")),
}


def _config(check: dict) -> dict | None:
    """The first config (paper scale, then mini) whose table for the check names a paper CSV."""
    return next((c for c in CONFIGS.values() if paper_file(c, check)), None)


def noisy(frame: pd.DataFrame, rng: int = 0) -> pd.DataFrame:
    """Each (variant, task, example) value as N_EXAMPLES examples in each of SEEDS: a seed shift centred over the
    seeds and noise centred per seed, so that every task's (and group's) mean is the value itself."""
    gen, parts = np.random.default_rng(rng), []
    for variant, rows in frame.groupby("variant", sort=False):
        shifts = gen.normal(0, SEED_SD, len(SEEDS))
        for seed, shift in zip(SEEDS, shifts - shifts.mean()):
            for r in rows.itertuples():
                e = gen.normal(0, NOISE, N_EXAMPLES)
                parts.append(pd.DataFrame({"variant": variant, "group": r.group, "seed": seed, "task": r.task,
                                           "example": [f"{r.example}#{i}" for i in range(N_EXAMPLES)],
                                           "value": r.value + shift + e - e.mean()}))
    return pd.concat(parts, ignore_index=True)[SCORE_COLUMNS]


def on_paper(claim: dict, frame: pd.DataFrame | None = None):
    """The claim's check on (noisy) paper numbers, through the ledger's dispatch."""
    check = claim["check"]
    config = _config(check)
    built = paper_scores(check, config)
    assert built is not None, f"{claim['id']}: no paper values for {check}"
    paper, groups = built
    scores = noisy(paper if frame is None else frame)
    return run_check(check, scores, groups, [], settings(config, check), plan.scaling_groups(config)), paper, groups


CLAIMS = load_claims()
CHECKABLE = [c for c in CLAIMS if c["id"] not in NOT_CHECKABLE and c["check"]["kind"] != "figure_below"]


def test_every_claim_is_checked_or_listed_with_a_reason(monkeypatch):
    monkeypatch.chdir(REPO)
    ids = {c["id"] for c in CLAIMS}
    assert set(NOT_CHECKABLE) <= ids and set(CONTRADICTED) <= ids
    for c in CLAIMS:
        config = _config(c["check"])
        has_paper = c["check"]["kind"] == "figure_below" or (config is not None and paper_scores(c["check"], config))
        assert has_paper != (c["id"] in NOT_CHECKABLE), c["id"]
    # the mapping the ledger uses names every NLP variant the claims compare on a table with a paper CSV
    for c in CHECKABLE:
        if not c["check"]["table"].startswith("t2i:"):
            named = [c["check"].get("variant"), *c["check"].get("others", []), *c["check"].get("variants", [])]
            assert set(filter(None, named)) <= set(PAPER_METHODS), c["id"]


@pytest.mark.parametrize("claim", CHECKABLE, ids=[c["id"] for c in CHECKABLE])
def test_claim_on_the_papers_own_numbers(claim, monkeypatch):
    monkeypatch.chdir(REPO)  # the configs name the paper CSVs from the repository root
    check = claim["check"]
    verdict, paper, groups = on_paper(claim)
    config = _config(check)
    table = config["tables"].get(check["table"], {})
    if check["kind"] != "best_differs" and table:  # every group of the table has the paper's numbers
        assert list(groups) == list(table["groups"]), claim["id"]
    for tasks in groups.values():  # the group means are the published values
        for v in paper.variant.unique():
            want = paper[(paper.variant == v) & paper.task.isin(tasks)].groupby("task").value.mean().mean()
            assert group_score(noisy(paper[paper.variant == v]), v, tasks) == pytest.approx(want, abs=1e-9)
    if claim["id"] not in CONTRADICTED:
        assert verdict.verdict == HOLDS, (claim["id"], verdict.reason)
        return
    comparison, why = CONTRADICTED[claim["id"]]
    assert verdict.verdict == FAILS, why
    assert [c.label for c in verdict.comparisons if c.verdict != HOLDS] == [comparison], why


def test_table10_holds_with_its_average_rows_value(monkeypatch):
    """The Table 10 claim holds once NLA's 3-subject image alignment is the 0.694 that the average row implies."""
    monkeypatch.chdir(REPO)
    claim = next(c for c in CLAIMS if c["id"] == "mole-ahead-with-more-subjects-t2i")
    _, paper, _ = on_paper(claim)
    nla = (paper.variant == "nla") & (paper.group == "3 subjects: image_alignment")
    assert paper[nla].value.item() == pytest.approx(75.9)
    implied = 4 * 69.8 - (71.2 + 68.2 + 70.3)  # the average row, less the 4-, 5- and 6-subject values
    assert implied == pytest.approx(69.5, abs=0.15)
    verdict, _, _ = on_paper(claim, paper.assign(value=paper.value.where(~nla, 69.4)))
    assert verdict.verdict == HOLDS, verdict.reason


def test_mixlora_efficiency_on_the_papers_changes():
    """The operator claim on the paper's -30% latency and -40% memory, as repeated timings around them."""
    from molebench.report.claims import _figure_claim

    claim = next(c for c in CLAIMS if c["id"] == "mixlora-optimised-operator-saves")
    check, gen, rows = claim["check"], np.random.default_rng(0), []
    for path, scale in (("plain", 1.0), ("optimised", None)):
        for _ in range(5):
            rows.append({"shape": "paper", "mode": "inference", "path": path,
                         **{c: (1.0 + check["paper"][c] if scale is None else scale) * 100 * (1 + gen.normal(0, 1e-3))
                            for c in check["columns"]}})
    verdict = _figure_claim(check, pd.DataFrame(rows), settings({}, check))
    assert verdict.verdict == HOLDS, verdict.reason
    assert all("inside the interval" in c.reason for c in verdict.comparisons)


def test_paper_gaps_follow_the_comparisons(monkeypatch):
    """The ledger's paper_gap: the paper's published difference for each comparison, in our estimate's units and
    sign, and the reason says whether it lies inside our interval."""
    monkeypatch.chdir(REPO)
    config = CONFIGS["paper"]
    by_id = {c["id"]: c for c in CLAIMS}
    assert paper_gaps(by_id["mole-beats-baselines"]["check"], config, settings(config)) == pytest.approx(
        {"translation: mole > lorahub": 1.5, "translation: mole > pems": 2.7, "struct_to_text: mole > lorahub": 2.2,
         "struct_to_text: mole > pems": 2.6, "closed_book_qa: mole > lorahub": 1.9,
         "closed_book_qa: mole > pems": 3.7, "bbh: mole > lorahub": 3.8, "bbh: mole > pems": 9.0,
         "nli: mole > lorahub": 1.3, "nli: mole > pems": 1.7})
    t6 = CONFIGS["config"]
    assert paper_gaps(by_id["mole-lead-over-lorahub-grows"]["check"], t6, settings(t6)) == pytest.approx(
        {"growth of mole's lead over lorahub-all from N=8 to N=128": 0.46}, abs=0.01)
    assert paper_gaps(by_id["mixlora-beats-lora-dora-multi-task"]["check"], config, settings(config)) == pytest.approx(
        {"commonsense: mixlora-mt > lora-mt": 9.8, "commonsense: mixlora-mt > dora-mt": 9.0})
    assert paper_gaps(by_id["mixlora-gain-larger-multi-task"]["check"], config, settings(config)) == pytest.approx(
        {"commonsense: mixlora-mt - lora-mt > mixlora-st - lora-st": 9.8 - 5.8,
         "commonsense: mixlora-mt - dora-mt > mixlora-st - dora-st": 9.0 - 2.3})
    t2i = paper_gaps(by_id["mole-beats-baselines-t2i"]["check"], config, settings(config))
    assert t2i["text_alignment: l-mole > nla"] == pytest.approx(100 * (0.759 - 0.678))
    # through the ledger: our NLI rows of Table 4 (the mean of the printed rows) against the printed averages
    paper = pd.read_csv(REPO / "data/paper/mole_table4.csv")
    rows = paper[paper.paper_task != "Average"].assign(
        task=lambda d: "paper_" + d.paper_task.str.lower().str.replace("-", "_"))
    ours = {"Single LoRA": "single", "NLA": "nla-output"}
    frame = pd.DataFrame({"variant": rows.method.map(ours), "group": "nli_and_wnli", "seed": 1, "task": rows.task,
                          "example": "e", "value": rows.value})
    _, comparisons = ledger([by_id["nla-below-single"]], config, noisy(frame))
    row = comparisons.iloc[0]
    assert row.paper_gap == pytest.approx(77.64 - 76.53)  # the printed averages
    assert row.estimate == pytest.approx(77.64 - 76.132)  # the rows' mean: ANLI-R3 reads 74.42 in Table 4
    assert not row.low <= row.paper_gap <= row.high and "paper's gap +1.11 outside" in row.reason


def test_the_claims_rule_reads_the_papers_csvs():
    assert paper_inputs(CONFIGS["paper"]) == [
        "data/paper/mole_table3.csv", "data/paper/mole_table4.csv", "data/paper/mole_table5.csv",
        "data/paper/mole_table7.csv", "data/paper/mole_table8.csv", "data/paper/mole_table1.csv",
        "data/paper/mole_table10.csv", "data/paper/mole_table9.csv", "data/paper/mixlora_single_task.csv",
        "data/paper/mixlora_multi_task.csv"]
    assert "data/paper/mole_table6.csv" in paper_inputs(CONFIGS["config"])
