"""Evidence for the claims ledger: paired, hierarchical bootstrap intervals over seeds and test examples, and verdicts.

The rule, in plain words:

    A comparison "A is above B" is the difference of A's and B's group scores, each the mean over the group's tasks
    of the task's mean over seeds and test examples, as in the tables. Its interval comes from 2,000 draws made with a
    fixed random seed, which vary both sources of noise together: the test examples, resampled within each task (the
    same examples for both variants and for every seed, since all score one test set), and the training seeds, whose
    spread makes the mean over a few seeds uncertain as a Student t does (resampling 3 seeds would understate it). A
    variant that does not depend on the seed, such as zero-shot, is paired with every seed of the other.
    A comparison HOLDS when its 95% interval lies above 0. It FAILS as contradicted when that interval lies below 0,
    and as "no gain" when its 90% interval lies below +delta, the smallest effect worth reporting (1 point by
    default): a gain may exist but it is too small to matter. Otherwise there is NOT ENOUGH EVIDENCE, and the ledger
    estimates how many test examples or seeds would decide it at the effect seen. A trained variant needs 2 seeds.
    A claim made of several comparisons holds when every one of them holds, and fails when any one is contradicted or
    shows no gain, with Holm's correction across the claim's comparisons for failing; otherwise there is not enough
    evidence. Without a true effect a claim thus holds, or is contradicted, by chance at most 5% of the time, however
    many comparisons it makes.
    A claim is NOT TESTABLE AT THIS SCALE when the experiment cannot show it: the single-task LoRAs do not beat
    zero-shot beyond their interval, or every compared variant is indistinguishable from zero-shot. That is no failure.

Check kinds (functions below): above, decreasing, middle_best, best_differs, gain_larger, the three parts of scaling
(best_at_every_size, lead_grows, all_decline_at_largest) and lowers (efficiency, from repeated timings).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations, pairwise

import numpy as np
import pandas as pd

HOLDS, FAILS, UNDECIDED, NOT_TESTABLE = "holds", "fails", "not enough evidence", "not testable at this scale"
CONTRADICTED, NO_GAIN = "contradicted", "no gain"
COLUMNS = ["variant", "seed", "task", "example", "value"]  # tidy per-example scores


@dataclass(frozen=True)
class Settings:
    """The rule's knobs: confidence level, smallest effect worth reporting (metric points), seeds a trained variant
    needs, and the bootstrap's size and random seed (fixed, so that the ledger is reproducible)."""
    confidence: float = 0.95
    delta: float = 1.0
    min_seeds: int = 2
    draws: int = 2000
    seed: int = 0

    @classmethod
    def from_config(cls, config: dict) -> Settings:
        """The config's `claims:` section (filled by the schema; an unvalidated config gets these defaults)."""
        return cls(**config.get("claims", {}))

    @property
    def alpha(self) -> float:
        return 1 - self.confidence


@dataclass(frozen=True)
class Interval:
    """A bootstrap interval of a difference (or another contrast), with its draws for tests at other levels."""
    estimate: float
    low: float
    high: float
    confidence: float
    n_examples: int  # test examples per task (the smallest task)
    n_seeds: int  # paired seeds (1 when only seedless variants are compared; 0 for timings)
    missing_seeds: int = 0  # seeds a trained variant lacks before the interval can give a verdict
    draws: np.ndarray = field(default_factory=lambda: np.zeros(1), repr=False, compare=False)

    @classmethod
    def of(cls, estimate, draws, confidence, n_examples, n_seeds, missing_seeds=0) -> Interval:
        low, high = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
        return cls(float(estimate), float(low), float(high), confidence, n_examples, n_seeds, missing_seeds, draws)

    def bounds(self, confidence: float) -> tuple[float, float]:
        low, high = np.quantile(self.draws, [(1 - confidence) / 2, (1 + confidence) / 2])
        return float(low), float(high)

    def p_zero(self) -> float:
        """Two-sided p-value of "no difference": below alpha exactly when the 1 - alpha interval excludes 0."""
        return float(min(1.0, 2 * min(np.mean(self.draws <= 0), np.mean(self.draws >= 0))))

    def p_gain(self, delta: float) -> float:
        """One-sided p-value of "the gain reaches delta"; small when the gain is surely below delta."""
        return float(np.mean(self.draws >= delta))

    def contains(self, value: float) -> bool:
        """Whether `value` (e.g. the paper's gap) lies in the interval."""
        return self.low <= value <= self.high

    def __neg__(self) -> Interval:
        return replace(self, estimate=-self.estimate, low=-self.high, high=-self.low, draws=-self.draws)


@dataclass(frozen=True)
class Comparison:
    label: str
    interval: Interval
    verdict: str
    reason: str


@dataclass(frozen=True)
class Verdict:
    verdict: str  # HOLDS, FAILS, UNDECIDED or NOT_TESTABLE
    reason: str  # in words, for the ledger
    comparisons: tuple[Comparison, ...] = ()


def group_score(scores: pd.DataFrame, variant: str, tasks: Collection[str] | None = None) -> float:
    """The tables' group score: the mean over tasks of each task's mean over seeds and examples."""
    mine = scores[(scores.variant == variant) & (scores.task.isin(tasks) if tasks is not None else True)]
    return float(mine.groupby("task")["value"].mean().mean())


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values: the family-wise error stays at alpha whatever the number of tests."""
    p = np.asarray(p_values, float)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    out = np.empty_like(p)
    out[order] = adjusted
    return out


class Sample:
    """Per-example scores as arrays, with the test examples resampled once (counts per task), so that every interval
    taken from one Sample sees the same draws: paired across variants, seeds and comparisons.

    tables: task -> array (variant, seed, example); seeds: variant -> the seed positions it has (default all; an
    untrained variant's values are the same at every position). Sample.of builds one from tidy scores."""

    def __init__(self, tables: Mapping[str, np.ndarray], variants: Sequence[str], untrained: Collection[str] = (),
                 settings: Settings = Settings(), seeds: Mapping[str, Collection[int]] | None = None):
        self.tables, self.variants, self.settings = dict(tables), list(variants), settings
        self.untrained = set(untrained)
        n_seeds = next(iter(self.tables.values())).shape[1]
        self.seeds = {v: set((seeds or {}).get(v, range(n_seeds))) for v in self.variants}
        rng, b = np.random.default_rng(settings.seed), settings.draws
        self.counts = {}  # task -> (draw, example) how often each example is drawn: resampled with replacement
        for task, x in self.tables.items():
            picks = rng.integers(0, x.shape[2], (b, x.shape[2])) + x.shape[2] * np.arange(b)[:, None]
            self.counts[task] = np.bincount(picks.ravel(), minlength=b * x.shape[2]).reshape(b, -1)

    @classmethod
    def of(cls, scores: pd.DataFrame, variants: Sequence[str], untrained: Names = None,
           settings: Settings = Settings(), tasks: Collection[str] | None = None) -> Sample:
        """From tidy scores (COLUMNS). `untrained`: variants that do not depend on the seed; None infers them (one
        seed while another variant has more; name them when a trained variant may have run once). Each task keeps the
        examples that every variant scored; a trained variant keeps the seeds it scored on every task."""
        variants = list(dict.fromkeys(variants))
        data = scores[scores.variant.isin(variants) & (scores.task.isin(tasks) if tasks is not None else True)]
        if absent := [v for v in variants if v not in set(data.variant)]:
            raise ValueError(f"no scores for {', '.join(map(str, absent))}")
        per_task = data.groupby(["variant", "task"])["seed"].agg(set)
        seeds = {v: set.intersection(*per_task[v]) for v in variants}
        most = max(len(s) for s in seeds.values())
        untrained = set(untrained if untrained is not None else
                        [v for v, s in seeds.items() if len(s) == 1 and most > 1]) & set(variants)
        labels = sorted({s for v in variants if v not in untrained for s in seeds[v]}) or [0]
        tables = {}
        for task in sorted(set(data.task), key=str):
            wide = data[data.task == task].pivot_table(index="example", columns=["variant", "seed"], values="value")
            if absent := [v for v in variants if v not in wide.columns.get_level_values(0)]:
                raise ValueError(f"no scores for {', '.join(map(str, absent))} on task {task!r}")
            wide = wide[wide.notna().all(axis=1)]
            tables[task] = x = np.full((len(variants), len(labels), len(wide)), np.nan)
            for i, v in enumerate(variants):
                if v in untrained:
                    x[i] = wide[v].mean(axis=1).to_numpy()
                else:
                    for s in seeds[v]:
                        x[i, labels.index(s)] = wide[v][s].to_numpy()
        positions = {v: {labels.index(s) for s in seeds[v]} for v in variants if v not in untrained}
        return cls(tables, variants, untrained, settings, positions)

    def interval(self, terms: Sequence[tuple[float, str, Sequence[str]]]) -> Interval:
        """The interval of a contrast, the sum of weight x group score over (weight, variant, tasks) terms, on the
        seeds its trained variants share. A draw adds the seed-averaged per-example contrast, its examples resampled
        within each task, and a normal seed shift whose variance is drawn from the seeds' spread (chi-square, S - 1
        degrees of freedom) less the part their own examples explain: with seed shifts alone this is the Student t
        interval of S seeds, and example noise is not counted twice."""
        trained = [v for _, v, _ in terms if v not in self.untrained]
        seeds = sorted(set.intersection(*(self.seeds[v] for v in trained))) if trained else [0]
        if not seeds:
            raise ValueError(f"{', '.join(map(str, trained))} share no seed")
        contrast: dict[str, np.ndarray] = {}  # task -> (seed, example) per-example contrast
        for weight, variant, tasks in terms:
            for t in tasks:
                contrast[t] = contrast.get(t, 0) + weight / len(tasks) * self.tables[t][self.variants.index(variant)][seeds]
        per_seed = sum(d.mean(axis=1) for d in contrast.values())
        drawn = sum(self.counts[t] @ d.mean(axis=0) / d.shape[1] for t, d in contrast.items())
        if (n := len(seeds)) > 1:
            within = sum(_residual_variance(d) / d.shape[1] for d in contrast.values())
            rng = np.random.default_rng([self.settings.seed, n])
            chi, z = rng.chisquare(n - 1, self.settings.draws), rng.standard_normal(self.settings.draws)
            drawn = drawn + z * np.sqrt(np.maximum(0, per_seed.var(ddof=1) * (n - 1) / chi - within) / n)
        missing = max(0, self.settings.min_seeds - n) if trained else 0
        return Interval.of(per_seed.mean(), drawn, self.settings.confidence,
                           min(d.shape[1] for d in contrast.values()), n, missing)

    def difference(self, a: str, b: str, tasks: Sequence[str] | None = None) -> Interval:
        """A's group score minus B's over `tasks` (default: all)."""
        tasks = list(tasks) if tasks is not None else list(self.tables)
        return self.interval([(1.0, a, tasks), (-1.0, b, tasks)])


def _residual_variance(d: np.ndarray) -> float:
    """Seed x example interaction mean square: the per-example noise of one seed around the others."""
    r = d - d.mean(axis=1, keepdims=True) - d.mean(axis=0, keepdims=True) + d.mean()
    return float((r ** 2).sum() / max(1, (d.shape[0] - 1) * (d.shape[1] - 1)))


Scores = pd.DataFrame | Sample  # tidy per-example scores (COLUMNS), or a Sample built from them
Names = Collection[str] | None  # untrained variants (None: inferred, see Sample.of)
Groups = Mapping[str, Sequence[str]] | None  # group name -> its tasks; None: one group "all" of every task


def _sample(scores: Scores, variants: Sequence[str], untrained: Names, settings: Settings,
            groups: Groups = None) -> tuple[Sample, dict[str, list[str]]]:
    """The Sample of `scores`, and the groups (by default one, "all", of every task)."""
    tasks = {t for ts in groups.values() for t in ts} if groups else None
    sample = scores if isinstance(scores, Sample) else Sample.of(scores, variants, untrained, settings, tasks)
    return sample, {k: list(v) for k, v in (groups or {"all": list(sample.tables)}).items()}


def difference(scores: pd.DataFrame, a: str, b: str, *, tasks: Sequence[str] | None = None, untrained: Names = None,
               settings: Settings = Settings()) -> Interval:
    """The paired hierarchical bootstrap interval of A's group score minus B's."""
    return Sample.of(scores, [a, b], untrained, settings, tasks).difference(a, b)


def _fmt(iv: Interval) -> str:
    return f"{iv.estimate:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]"


def _needed(iv: Interval, settings: Settings) -> str:
    """Roughly the data that would decide it at the observed effect, as an interval narrows with 1/sqrt(n)."""
    est, ratios = iv.estimate, []
    if est:
        ratios.append((est - iv.low if est > 0 else iv.high - est) / abs(est))  # to exclude 0
    if est < settings.delta:
        ratios.append((iv.bounds(1 - 2 * settings.alpha)[1] - est) / (settings.delta - est))  # to exclude +delta
    if not ratios:
        return "the interval is empty"
    f, n = max(1.0, min(ratios) ** 2), lambda k: int(np.ceil(max(1.0, min(ratios) ** 2) * k))
    more = f"~{n(iv.n_examples)} repeats" if not iv.n_seeds else (f"~{n(iv.n_examples)} test examples per task, or "
                                                                   f"~{n(iv.n_seeds)} seeds")
    return f"at the observed effect about {f:.1f}x the data would decide it: {more}"


def decide(comparisons: Mapping[str, Interval], settings: Settings = Settings(),
           lower_is_better: bool = False) -> Verdict:
    """The module's rule for a claim made of comparisons "A above B" (label -> interval of A - B). A comparison
    holds on its own 1 - alpha interval: the claim needs all of them, so a claim without a true effect holds no more
    often than its weakest comparison would (an intersection-union test; Holm there would only cost power). Failing
    needs one comparison only, so "contradicted" and "no gain" are Holm-corrected across the claim."""
    alpha, signed = settings.alpha, {k: (-iv if lower_is_better else iv) for k, iv in comparisons.items()}
    p_zero = holm([1.0 if iv.missing_seeds else iv.p_zero() for iv in signed.values()])  # untestable: p = 1
    p_gain = holm([1.0 if iv.missing_seeds else iv.p_gain(settings.delta) for iv in signed.values()])
    word, out, why = "below" if lower_is_better else "above", [], []
    for (label, iv), pz, pg in zip(signed.items(), p_zero, p_gain):
        if iv.missing_seeds:
            verdict, reason = UNDECIDED, f"{iv.missing_seeds} more seed(s) needed (a trained variant has {iv.n_seeds})"
        elif pz < alpha and iv.estimate < 0:
            verdict, reason = FAILS, f"{CONTRADICTED}: {'above' if lower_is_better else 'below'} 0 (Holm)"
        elif iv.p_zero() < alpha and iv.estimate > 0:
            verdict, reason = HOLDS, f"{word} 0"
        elif pg < alpha:
            verdict, reason = FAILS, f"{NO_GAIN}: any gain is below delta = {settings.delta:g} (Holm)"
        else:
            verdict, reason = UNDECIDED, _needed(iv, settings)
        why.append(reason.split(":")[0])
        out.append(Comparison(label, comparisons[label], verdict, f"{_fmt(comparisons[label])}: {reason}"))
    n, held = len(out), sum(c.verdict == HOLDS for c in out)
    count = f"{held} of {n} comparison{'s' * (n != 1)} hold at {settings.confidence:.0%}"
    for reason in (CONTRADICTED, NO_GAIN):
        if hit := [c.label for c, w in zip(out, why) if w == reason]:
            return Verdict(FAILS, f"{reason}: {'; '.join(hit)}; {count}", tuple(out))
    if any(c.interval.missing_seeds for c in out):
        missing = max(c.interval.missing_seeds for c in out)
        return Verdict(UNDECIDED, f"{missing} more seed(s) needed for a verdict; {count}", tuple(out))
    return Verdict(HOLDS if held == n and n else UNDECIDED, count, tuple(out))


def testable(scores: Scores, *, zero_shot: str, compared: Sequence[str], single: str | None = None,
             untrained: Names = None, settings: Settings = Settings()) -> Verdict | None:
    """NOT_TESTABLE with its reason when the experiment cannot show a claim about `compared`, else None: `single`
    (the single-task LoRAs) is not above `zero_shot` beyond its interval, or every compared variant's interval
    against zero-shot contains 0."""
    sample, _ = _sample(scores, [*([single] if single else []), zero_shot, *compared], untrained, settings)
    if single and (gain := sample.difference(single, zero_shot)).low <= 0:
        return Verdict(NOT_TESTABLE, f"the single-task LoRAs ({single}) do not beat {zero_shot} beyond their "
                                     f"interval: {_fmt(gain)}")
    gaps = {v: sample.difference(v, zero_shot) for v in compared}
    if all(iv.contains(0) for iv in gaps.values()):
        return Verdict(NOT_TESTABLE, f"every compared variant is indistinguishable from {zero_shot}: "
                       + "; ".join(f"{v} {_fmt(iv)}" for v, iv in gaps.items()))
    return None


def above(scores: Scores, variant: str, others: Sequence[str], *, groups: Groups = None,
          untrained: Names = None, settings: Settings = Settings()) -> Verdict:
    """`variant` above each of `others` in every group."""
    sample, groups = _sample(scores, [variant, *others], untrained, settings, groups)
    return decide({f"{g}: {variant} > {o}": sample.difference(variant, o, ts) for g, ts in groups.items()
                   for o in others}, settings)


def decreasing(scores: Scores, variants: Sequence[str], *, groups: Groups = None,
               untrained: Names = None, settings: Settings = Settings()) -> Verdict:
    """`variants` in falling order: each above the next, in every group."""
    sample, groups = _sample(scores, variants, untrained, settings, groups)
    return decide({f"{g}: {a} > {b}": sample.difference(a, b, ts) for g, ts in groups.items()
                   for a, b in pairwise(variants)}, settings)


def middle_best(scores: Scores, variants: Sequence[str], *, groups: Groups = None,
                untrained: Names = None, settings: Settings = Settings()) -> Verdict:
    """Of `variants` ordered finest to coarsest, an intermediate one is above both ends, in every group. Nothing is
    picked on the data and then tested on the same data: in a group it holds when some intermediate variant is above
    both ends, each test at alpha / (number of intermediate variants); it fails when an end is above every
    intermediate variant (contradicted) or when no intermediate variant gains delta over both ends, each test at
    alpha / (2 x groups)."""
    sample, groups = _sample(scores, variants, untrained, settings, groups)
    (a, d), k = (settings.alpha, settings.delta), 2 * len(groups)
    ends, middle, found, items = [variants[0], variants[-1]], list(variants[1:-1]), {}, {}
    for g, ts in groups.items():
        iv = {(m, e): sample.difference(m, e, ts) for m in middle for e in ends}
        items |= {f"{g}: {m} > {e}": i for (m, e), i in iv.items()}
        if best := [m for m in middle if all(iv[m, e].p_zero() < a / len(middle) and iv[m, e].estimate > 0
                                             for e in ends)]:
            found[g] = HOLDS, f"{g}: {', '.join(best)} above both ends"
        elif top := [e for e in ends if all(iv[m, e].p_zero() < a / k and iv[m, e].estimate < 0 for m in middle)]:
            found[g] = FAILS, f"{g}: {CONTRADICTED}, {' and '.join(top)} above every intermediate variant"
        elif all(any(iv[m, e].p_gain(d) < a / k for e in ends) for m in middle):
            found[g] = FAILS, f"{g}: {NO_GAIN}, no intermediate variant gains {d:g} over both ends"
        else:
            found[g] = UNDECIDED, f"{g}: {UNDECIDED}"
    return _combined(found, items, settings)


def best_differs(scores: Scores, variants: Sequence[str], *, groups: Groups = None,
                 untrained: Names = None, settings: Settings = Settings()) -> Verdict:
    """The best of `variants` depends on the task, beyond noise, in every group: two tasks order a pair of variants
    in opposite ways (a crossing), each difference at alpha / (pairs x tasks), a Bonferroni over the whole search.
    It fails in a group when one variant is above every other on every task (contradicted; each test at
    alpha / (variants x groups)) or when every interaction contrast, (a - b) on one task minus (a - b) on another,
    has its 1 - 2 alpha interval inside (-delta, +delta) (preferences never change by a reportable amount)."""
    sample, groups = _sample(scores, variants, untrained, settings, groups)
    (a, d), pairs, found, items = (settings.alpha, settings.delta), list(combinations(variants, 2)), {}, {}
    for g, ts in groups.items():
        iv = {(x, y, t): sample.difference(x, y, [t]) for x, y in pairs for t in ts}
        iv |= {(y, x, t): -i for (x, y, t), i in iv.items()}
        items |= {f"{g}, {t}: {x} > {y}": iv[x, y, t] for x, y in pairs for t in ts}
        sign = {key: np.sign(i.estimate) * (i.p_zero() < a / (len(pairs) * len(ts))) for key, i in iv.items()}
        crossing = [f"{x} vs {y} on {t1} and {t2}" for x, y in pairs for t1, t2 in combinations(ts, 2)
                    if sign[x, y, t1] * sign[x, y, t2] < 0]
        champion = [x for x in variants if all(iv[x, y, t].estimate > 0 and iv[x, y, t].p_zero() < a / (
            len(variants) * len(groups)) for y in variants if y != x for t in ts)]
        flat = [sample.interval([(1, x, [t1]), (-1, y, [t1]), (-1, x, [t2]), (1, y, [t2])])
                for x, y in pairs for t1, t2 in combinations(ts, 2)]
        if crossing:
            found[g] = HOLDS, f"{g}: crossing of {crossing[0]}"
        elif champion:
            found[g] = FAILS, f"{g}: {CONTRADICTED}, {champion[0]} is above every other variant on every task"
        elif flat and all(max(i.p_gain(d), (-i).p_gain(d)) < a / len(groups) for i in flat):
            found[g] = FAILS, f"{g}: {NO_GAIN}, no preference changes by {d:g} between tasks"
        else:
            found[g] = UNDECIDED, f"{g}: {UNDECIDED}"
    return _combined(found, items, settings)


def gain_larger(scores: Scores, variant: str, others: Sequence[str], reference: str, reference_others: Sequence[str],
                *, groups: Groups = None, untrained: Names = None, settings: Settings = Settings()) -> Verdict:
    """`variant`'s gain over each of `others` is larger than `reference`'s gain over the matching one of
    `reference_others` (e.g. MixLoRA trained on the union of the tasks against MixLoRA trained on one task at a time),
    in every group: the interaction (variant - other) - (reference - reference_other), an `above` of two gains."""
    sample, groups = _sample(scores, [variant, *others, reference, *reference_others], untrained, settings, groups)
    return decide({f"{g}: {variant} - {o} > {reference} - {r}": sample.interval(
        [(1.0, variant, ts), (-1.0, o, ts), (-1.0, reference, ts), (1.0, r, ts)])
        for g, ts in groups.items() for o, r in zip(others, reference_others, strict=True)}, settings)


def _combined(found: dict[str, tuple[str, str]], items: dict[str, Interval], settings: Settings) -> Verdict:
    """A verdict over groups: holds in every group, fails in any, else not enough evidence (seeds first)."""
    shown, verdicts = decide(items, settings).comparisons, [v for v, _ in found.values()]
    if missing := max(iv.missing_seeds for iv in items.values()):
        return Verdict(UNDECIDED, f"{missing} more seed(s) needed for a verdict", shown)
    verdict = FAILS if FAILS in verdicts else HOLDS if set(verdicts) == {HOLDS} else UNDECIDED
    return Verdict(verdict, "; ".join(r for _, r in found.values()), shown)


def _by_size(scores_by_size: Mapping[float, pd.DataFrame], untrained: Names) -> tuple[pd.DataFrame, list, Names]:
    """One frame with each variant renamed 'variant|size', so that one Sample resamples the test examples of every
    size together (every size scores the same examples); the sizes in order, and the untrained names renamed."""
    sizes = sorted(scores_by_size)
    data = pd.concat([scores_by_size[n].assign(variant=[f"{v}|{n}" for v in scores_by_size[n].variant])
                      for n in sizes], ignore_index=True)
    return data, sizes, None if untrained is None else [f"{u}|{n}" for u in untrained for n in sizes]


def best_at_every_size(scores_by_size: Mapping[float, pd.DataFrame], variant: str, others: Sequence[str], *,
                       untrained: Names = None, settings: Settings = Settings()) -> Verdict:
    """Scaling (1): `variant` above each of `others` at every number of LoRAs (size -> that size's scores)."""
    data, sizes, untrained = _by_size(scores_by_size, untrained)
    sample = Sample.of(data, [f"{v}|{n}" for n in sizes for v in (variant, *others)], untrained, settings)
    return decide({f"N={n}: {variant} > {o}": sample.difference(f"{variant}|{n}", f"{o}|{n}")
                   for n in sizes for o in others}, settings)


def lead_grows(scores_by_size: Mapping[float, pd.DataFrame], variant: str, others: Sequence[str], *,
               untrained: Names = None, settings: Settings = Settings()) -> Verdict:
    """Scaling (2): `variant`'s lead over each of `others` grows with the number of LoRAs N: the least-squares slope
    of the lead over log N, times the range of log N (the fitted growth from the smallest to the largest N, in
    points, compared with delta), is above 0."""
    data, sizes, untrained = _by_size(scores_by_size, untrained)
    x, tasks = np.log(np.asarray(sizes, float)), sorted(set(data.task))
    weights = (x - x.mean()) / ((x - x.mean()) ** 2).sum() * (x[-1] - x[0])
    sample = Sample.of(data, [f"{v}|{n}" for n in sizes for v in (variant, *others)], untrained, settings)
    return decide({f"growth of {variant}'s lead over {o} from N={sizes[0]} to N={sizes[-1]}": sample.interval(
        [(w * sign, f"{v}|{n}", tasks) for n, w in zip(sizes, weights) for sign, v in ((1, variant), (-1, o))])
        for o in others}, settings)


def all_decline_at_largest(scores_by_size: Mapping[float, pd.DataFrame], variants: Sequence[str], *,
                           untrained: Names = None, settings: Settings = Settings()) -> Verdict:
    """Scaling (3): every variant scores less at the largest number of LoRAs than at the one before."""
    data, sizes, untrained = _by_size(scores_by_size, untrained)
    previous, last = sizes[-2:]
    sample = Sample.of(data, [f"{v}|{n}" for n in (previous, last) for v in variants], untrained, settings)
    return decide({f"{v}: N={previous} > N={last}": sample.difference(f"{v}|{previous}", f"{v}|{last}")
                   for v in variants}, settings)


def timing_change(new: Sequence[float], reference: Sequence[float], settings: Settings = Settings()) -> Interval:
    """Relative change of the typical (geometric mean) time or memory of `new` against `reference`, from repeated
    measurements (-0.3: 30% less). Each side's mean log is drawn from its Student t, as few repeats need."""
    logs = [np.log(np.asarray(x, float)) for x in (new, reference)]
    if min(len(x) for x in logs) < 2:
        raise ValueError("a timing interval needs at least 2 repeats of each side")
    rng = np.random.default_rng(settings.seed)
    drawn = [x.mean() + x.std(ddof=1) / np.sqrt(len(x)) * rng.standard_t(len(x) - 1, settings.draws) for x in logs]
    return Interval.of(np.expm1(logs[0].mean() - logs[1].mean()), np.expm1(drawn[0] - drawn[1]),
                       settings.confidence, min(len(x) for x in logs), 0)


def lowers(measurements: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, paper_change: float | None = None,
           delta: float = 0.05, settings: Settings = Settings()) -> Verdict:
    """Efficiency: in every row (label -> (new, reference) repeated measurements) `new` lowers the time or memory:
    the relative change lies below 0; fails when above 0 or when no saving reaches `delta` (a fraction). Each reason
    says whether the paper's change (e.g. -0.30) lies in the interval."""
    verdict = decide({k: timing_change(n, r, settings) for k, (n, r) in measurements.items()},
                     replace(settings, delta=delta), lower_is_better=True)
    if paper_change is None:
        return verdict
    return replace(verdict, comparisons=tuple(
        replace(c, reason=f"{c.reason}; the paper's {paper_change:+.0%} lies "
                          f"{'inside' if c.interval.contains(paper_change) else 'outside'} the interval")
        for c in verdict.comparisons))
