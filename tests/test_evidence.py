"""The ledger's statistics (molebench.report.evidence): calibration on simulated per-example scores, each check kind
able to hold, fail and stay undecided, the pairing of seedless variants, determinism."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from molebench.report import evidence as ev

# Simulated scores in points, 3 seeds x 3 tasks. A seed shifts each variant's task score (own_seed_sd) and, shared by
# all variants built on that seed's LoRAs, every variant's (shared_seed_sd); per example a variant has its own
# lasting error (example_sd) and a seed's error (noise_sd); binary scores agree with the other variants' on a share
# `agree` of examples and with the other seeds' on `seed_agree`.
QUIET = {"binary": False, "examples": 100, "own_seed_sd": 0.1, "shared_seed_sd": 3.0, "example_sd": 0.5, "noise_sd": 0.5}
NOISY = {"binary": True, "examples": 40, "own_seed_sd": 2.0, "agree": 0.7, "seed_agree": 0.8}  # 40 exact-match examples
NULL_CASES = {  # no true effect, noise as bad as it gets at mini
    "exact match, 40 examples, seeds disagree on 20% of examples": NOISY,
    "sentence ROUGE, 100 examples, seed shifts dominate": {"binary": False, "examples": 100, "own_seed_sd": 3.0,
                                                           "example_sd": 3.0, "noise_sd": 3.0},
}
REALISTIC = {"binary": False, "examples": 100, "own_seed_sd": 0.5, "shared_seed_sd": 3.0, "example_sd": 6.0,
             "noise_sd": 2.0}  # sentence ROUGE; variants built on one seed's LoRAs share most of its shift
FAST = ev.Settings(draws=1000)


def simulate(rng, effects, *, seeds=3, tasks=3, examples=60, binary=True, own_seed_sd=2.0, shared_seed_sd=0.0,
             example_sd=6.0, noise_sd=4.0, agree=0.85, seed_agree=0.95):
    """task -> (variant, seed, example) scores; effects: variant -> points added (a number, or one per task)."""
    v = len(effects)
    effect = np.array([np.broadcast_to(e, tasks) for e in effects.values()], float)[:, None, :, None]
    shift = effect + rng.normal(0, shared_seed_sd, (1, seeds, tasks, 1)) + rng.normal(0, own_seed_sd,
                                                                                   (v, seeds, tasks, 1))
    if binary:
        p = np.clip(1 / (1 + np.exp(-rng.normal(0, 1.5, (1, 1, tasks, examples)))) + shift / 100, 0, 1)
        u = np.where(rng.random((v, 1, tasks, examples)) < agree, rng.random((1, 1, tasks, examples)),
                     rng.random((v, 1, tasks, examples)))
        u = np.where(rng.random((v, seeds, tasks, examples)) < seed_agree, u, rng.random((v, seeds, tasks, examples)))
        x = 100.0 * (u < p)
    else:
        x = np.clip(rng.normal(40, 15, (1, 1, tasks, examples)) + shift + rng.normal(0, example_sd, (v, 1, tasks, examples))
                    + rng.normal(0, noise_sd, (v, seeds, tasks, examples)), 0, 100)
    return {f"t{t}": x[:, :, t] for t in range(tasks)}


def tidy(tables, variants):
    """The tidy per-example frame (ev.COLUMNS) of simulated tables."""
    rows = [pd.DataFrame({"variant": variant, "seed": s, "task": task, "example": np.arange(x.shape[2]),
                          "value": x[i, s]})
            for task, x in tables.items() for i, variant in enumerate(variants) for s in range(x.shape[1])]
    return pd.concat(rows, ignore_index=True)


def frame(effects, noise, seed=0):
    return tidy(simulate(np.random.default_rng(seed), effects, **noise), list(effects))


def outcomes(k, effect, noise, reps, settings, seed=1):
    """Verdicts of `reps` simulated claims "A above each of B1..Bk" where A's true gain is `effect`."""
    rng, names, out = np.random.default_rng(seed), ["A", *[f"B{i}" for i in range(k)]], []
    for _ in range(reps):
        tables = simulate(rng, {"A": effect, **{n: 0.0 for n in names[1:]}}, **noise)
        verdict = ev.above(ev.Sample(tables, names, settings=settings), "A", names[1:], settings=settings)
        out.append(verdict.verdict if verdict.verdict != ev.FAILS else verdict.reason.split(":")[0])
    return pd.Series(out).value_counts(normalize=True)


@pytest.mark.parametrize("case", NULL_CASES)
@pytest.mark.parametrize("k", [1, 6, 16])
def test_without_effect_claims_rarely_hold_or_are_contradicted(case, k):
    reps = 200
    rates = outcomes(k, 0.0, NULL_CASES[case], reps, ev.Settings())
    slack = binom.ppf(0.99, reps, 0.05) / reps  # 5% plus the Monte Carlo error of `reps` claims
    assert rates.get(ev.HOLDS, 0) <= slack and rates.get(ev.CONTRADICTED, 0) <= slack, rates.to_dict()


@pytest.mark.parametrize("k", [1, 6, 16])
def test_a_true_effect_of_three_delta_holds(k):
    rates = outcomes(k, 3.0, REALISTIC, 100, ev.Settings(), seed=2)
    assert rates.get(ev.HOLDS, 0) >= 0.8, rates.to_dict()


def test_group_score_and_estimate_follow_the_tables():
    scores = frame({"A": 4.0, "B": 0.0}, QUIET)
    scores = scores[~((scores.task == "t2") & (scores.example >= 50))]  # tasks of different sizes
    iv = ev.difference(scores, "A", "B")
    assert iv.estimate == pytest.approx(ev.group_score(scores, "A") - ev.group_score(scores, "B"))
    assert iv.low < iv.estimate < iv.high and (iv.n_seeds, iv.n_examples, iv.missing_seeds) == (3, 50, 0)
    assert iv.contains(iv.estimate) and not iv.contains(iv.high + 1)


def test_seedless_variant_pairs_with_every_seed():
    scores = frame({"mole": 5.0, "zero-shot": 0.0}, QUIET)
    once = scores[(scores.variant == "mole") | (scores.seed == 0)]  # zero-shot ran once
    zero = once[once.variant == "zero-shot"]
    repeated = pd.concat([once[once.variant == "mole"], *[zero.assign(seed=s) for s in range(3)]])
    iv = ev.difference(once, "mole", "zero-shot")  # zero-shot inferred seedless: one seed where mole has three
    assert iv.n_seeds == 3 and iv.missing_seeds == 0
    assert iv.estimate == pytest.approx(ev.group_score(once, "mole") - ev.group_score(once, "zero-shot"))
    same = ev.difference(repeated, "mole", "zero-shot", untrained=["zero-shot"])
    assert (same.estimate, same.low, same.high) == pytest.approx((iv.estimate, iv.low, iv.high))
    # a trained variant that ran once is not paired: it lacks seeds, and the ledger says how many
    single = once[once.seed == 0]
    verdict = ev.above(single, "mole", ["zero-shot"])
    assert verdict.verdict == ev.UNDECIDED and "1 more seed(s) needed" in verdict.reason


def test_same_seed_same_interval_and_arrays_match_frames():
    tables = simulate(np.random.default_rng(3), {"A": 2.0, "B": 0.0}, **NOISY)
    scores = tidy(tables, ["A", "B"])
    first, second = ev.difference(scores, "A", "B"), ev.difference(scores, "A", "B")
    assert first == second and np.array_equal(first.draws, second.draws)
    assert not np.array_equal(first.draws, ev.difference(scores, "A", "B", settings=ev.Settings(seed=1)).draws)
    from_arrays = ev.Sample(tables, ["A", "B"]).difference("A", "B")
    assert from_arrays == first and np.array_equal(from_arrays.draws, first.draws)


def test_holm():
    assert ev.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def verdict_of(result):
    """holds, not enough evidence, or why it fails: contradicted or no gain."""
    if result.verdict != ev.FAILS:
        return result.verdict
    return ev.CONTRADICTED if ev.CONTRADICTED in result.reason else ev.NO_GAIN if ev.NO_GAIN in result.reason else "?"


def test_above_and_the_words_of_each_verdict():
    cases = {ev.HOLDS: (5.0, QUIET), ev.CONTRADICTED: (-5.0, QUIET), ev.NO_GAIN: (0.0, QUIET),
             ev.UNDECIDED: (2.0, NOISY)}
    for expected, (effect, noise) in cases.items():
        result = ev.above(frame({"A": effect, "B": 0.0, "C": 0.0}, noise), "A", ["B", "C"], settings=FAST)
        assert verdict_of(result) == expected, result.reason
        assert len(result.comparisons) == 2 and result.comparisons[0].label == "all: A > B"
    assert "test examples per task" in result.comparisons[0].reason  # what would decide it


def test_decreasing():
    for expected, effects, noise in [(ev.HOLDS, [6, 3, 0], QUIET), (ev.CONTRADICTED, [0, 3, 6], QUIET),
                                     (ev.NO_GAIN, [0, 0, 0], QUIET), (ev.UNDECIDED, [2, 1, 0], NOISY)]:
        scores = frame(dict(zip(["tau1", "tau2", "tau3"], effects)), noise)
        groups = {"first two": ["t0", "t1"], "last": ["t2"]}
        result = ev.decreasing(scores, ["tau1", "tau2", "tau3"], groups=groups, settings=FAST)
        assert verdict_of(result) == expected, result.reason
        assert len(result.comparisons) == 4


def test_middle_best():
    variants = ["m", "l", "b", "n"]
    for expected, effects, noise in [(ev.HOLDS, [0, 1, 5, 0], QUIET), (ev.CONTRADICTED, [6, 0, 0, 0], QUIET),
                                     (ev.NO_GAIN, [0, 0, 0, 0], QUIET), (ev.UNDECIDED, [0, 2, 0, 0], NOISY)]:
        result = ev.middle_best(frame(dict(zip(variants, effects)), noise), variants, settings=FAST)
        assert verdict_of(result) == expected, result.reason
        assert len(result.comparisons) == 4


def test_best_differs():
    variants = ["x", "y", "z"]
    for expected, effects, noise in [(ev.HOLDS, [[5, 0, 0], [0, 5, 0], 0], QUIET),
                                     (ev.CONTRADICTED, [5, 0, 0], QUIET), (ev.NO_GAIN, [0, 0, 0], QUIET),
                                     (ev.UNDECIDED, [[2, 0, 0], [0, 2, 0], 0], NOISY)]:
        result = ev.best_differs(frame(dict(zip(variants, effects)), noise), variants, settings=FAST)
        assert verdict_of(result) == expected, result.reason
        assert len(result.comparisons) == 9


SIZES = [8, 32, 128]


def by_size(leads, noise, others=("nla", "pems"), seed=0):
    """size -> scores where mole leads each of `others` by leads[i] at the i-th size."""
    return {n: frame({"mole": lead, **{o: 0.0 for o in others}}, noise, seed=seed + i)
            for i, (n, lead) in enumerate(zip(SIZES, leads))}


def test_scaling_best_at_every_size():
    for expected, leads, noise in [(ev.HOLDS, [4, 4, 4], QUIET), (ev.CONTRADICTED, [4, 4, -4], QUIET),
                                   (ev.NO_GAIN, [4, 0, 4], QUIET), (ev.UNDECIDED, [2, 2, 2], NOISY)]:
        result = ev.best_at_every_size(by_size(leads, noise), "mole", ["nla", "pems"], settings=FAST)
        assert verdict_of(result) == expected, result.reason
        assert result.comparisons[-1].label == "N=128: mole > pems"


def test_scaling_lead_grows():
    for expected, leads, noise in [(ev.HOLDS, [1, 4, 8], QUIET), (ev.CONTRADICTED, [8, 4, 1], QUIET),
                                   (ev.NO_GAIN, [3, 3, 3], QUIET), (ev.UNDECIDED, [1, 2, 3], NOISY)]:
        result = ev.lead_grows(by_size(leads, noise), "mole", ["nla", "pems"], settings=FAST)
        assert verdict_of(result) == expected, result.reason
        assert result.comparisons[0].label == "growth of mole's lead over nla from N=8 to N=128"


def test_scaling_all_decline_at_largest():
    def scores(last_shift, noise):
        return {n: frame({"mole": 3.0 + shift, "nla": shift}, noise, seed=i)
                for i, (n, shift) in enumerate(zip(SIZES, [0.0, 0.0, last_shift]))}

    for expected, shift, noise in [(ev.HOLDS, -6.0, QUIET), (ev.CONTRADICTED, 6.0, QUIET),
                                   (ev.UNDECIDED, -2.0, NOISY)]:
        result = ev.all_decline_at_largest(scores(shift, noise), ["mole", "nla"], settings=FAST)
        assert verdict_of(result) == expected, result.reason
        assert [c.label for c in result.comparisons] == ["mole: N=32 > N=128", "nla: N=32 > N=128"]


def test_lowers_from_repeated_timings():
    rng = np.random.default_rng(0)

    def timings(ratio, spread, repeats=5):
        reference = 100 * np.exp(rng.normal(0, spread, repeats))
        return ratio * 100 * np.exp(rng.normal(0, spread, repeats)), reference

    for expected, ratio, spread, repeats in [(ev.HOLDS, 0.7, 0.03, 5), (ev.CONTRADICTED, 1.3, 0.03, 5),
                                             (ev.NO_GAIN, 1.0, 0.005, 5), (ev.UNDECIDED, 0.85, 0.3, 3)]:
        result = ev.lowers({"shape 1, train": timings(ratio, spread, repeats)}, paper_change=-0.30, settings=FAST)
        assert verdict_of(result) == expected, result.reason
        iv = result.comparisons[0].interval
        assert iv.low < iv.estimate < iv.high and iv.estimate == pytest.approx(ratio - 1, abs=max(0.1, 3 * spread))
    holds = ev.lowers({"a": timings(0.7, 0.03)}, paper_change=-0.30).comparisons[0]
    assert "the paper's -30% lies inside" in holds.reason
    assert "lies outside" in ev.lowers({"a": timings(0.9, 0.01)}, paper_change=-0.30).comparisons[0].reason


def test_not_testable_at_this_scale():
    flat = frame({"single": 0.0, "zero-shot": 0.0, "mole": 0.0, "lorahub": 0.0}, QUIET)
    flat = flat.assign(value=19.2)  # every method at the zero-shot level, as mini Tables 6 and 8
    result = ev.testable(flat, zero_shot="zero-shot", compared=["mole", "lorahub"], settings=FAST)
    assert result.verdict == ev.NOT_TESTABLE and "indistinguishable from zero-shot" in result.reason
    weak = frame({"single": 0.0, "zero-shot": 0.0, "mole": 6.0}, QUIET)
    result = ev.testable(weak, zero_shot="zero-shot", compared=["mole"], single="single", settings=FAST)
    assert result.verdict == ev.NOT_TESTABLE and "single-task LoRAs (single) do not beat" in result.reason
    good = frame({"single": 8.0, "zero-shot": 0.0, "mole": 6.0}, QUIET)
    assert ev.testable(good, zero_shot="zero-shot", compared=["mole"], single="single", settings=FAST) is None
