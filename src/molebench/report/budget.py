"""The run's measured cost against its budget, from Snakemake's benchmark files: CPU-minutes per rule, the critical
path, and the least wall time the budget's cores need.

    molebench bench --pipeline [--config C]      after a run: the table, and whether the run fits its budget
        [--save-reference PATH]                  ... and each rule's median job times, for later runs' estimates
    RunProgress                                  during a run (the molebench logger plugin of both profiles): a line
                                                 per finished rule with jobs done / total, elapsed and time left

A fresh clone has no benchmark files, so its first run (a newcomer's) could estimate nothing until each rule had
finished a job. The config's `budget.reference` names the per-rule median job times of a whole run on a reference
machine (data/timings/, with that machine and commit in its first line): rules this run and earlier ones have not
timed are estimated at those times, and the line says so.

Why: the default run must finish in one sitting, and every change to the suite is measured by that run; a change that
makes it slower shows here at once, rule by rule, instead of in the next newcomer's evening. The site's provenance
page shows the same numbers.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pandas as pd

from molebench.nlp import plan
from molebench.ramole import plan as ramole_plan
from molebench.t2i import plan as t2i_plan

BENCHMARK_COLUMNS = ["rule", "job", "s", "cpu_s", "max_rss"]


def benchmark_files(results_dir: str | Path) -> list[str]:
    return sorted(map(str, (Path(results_dir) / "benchmarks").rglob("*.tsv")))


def load_benchmarks(paths: list[str]) -> pd.DataFrame:
    """Snakemake benchmark files results/benchmarks/<rule>/<wildcards>.tsv -> rows: rule, job, s (wall), cpu_s,
    max_rss (MB)."""
    frames = []
    for path in map(Path, paths):
        parts = path.with_suffix("").parts
        if "benchmarks" not in parts[:-2]:
            raise ValueError(f"{path}: expected a path like results/benchmarks/<rule>/<wildcards>.tsv")
        at = len(parts) - 1 - parts[::-1].index("benchmarks")
        raw = pd.read_csv(path, sep="\t")
        frames.append(pd.DataFrame({"rule": parts[at + 1], "job": "/".join(parts[at + 2:]),
                                    "s": pd.to_numeric(raw["s"], errors="coerce"),
                                    "cpu_s": pd.to_numeric(raw.get("cpu_time", math.nan), errors="coerce"),
                                    "max_rss": pd.to_numeric(raw["max_rss"], errors="coerce")}))
    return pd.concat(frames, ignore_index=True)[BENCHMARK_COLUMNS] if frames else pd.DataFrame(
        columns=BENCHMARK_COLUMNS)


def job_chains(config: dict) -> list[list[tuple[str, str]]]:
    """The dependency chains of the config's DAG: the NLP track's, RAMoLE's and the text-to-image slice's."""
    return (plan.job_chains(config) + (ramole_plan.job_chains(config) if "ramole" in config else [])
            + (t2i_plan.job_chains(config["t2i"]) if "t2i" in config else []))


def critical_path(benchmarks: pd.DataFrame, chains: list[list[tuple[str, str]]]) -> list[tuple[str, str, float]]:
    """The chain of dependent jobs with the longest measured wall time (`job_chains`), as
    (rule, job, seconds) steps; a job without a benchmark file counts 0 s and shows NaN."""
    seconds = {(r.rule, r.job): r.s for r in benchmarks.itertuples()}
    timed = [[(rule, job, seconds.get((rule, job), math.nan)) for rule, job in chain] for chain in chains]
    return max(timed, key=lambda chain: sum(s for *_, s in chain if not math.isnan(s)), default=[])


def per_rule(benchmarks: pd.DataFrame) -> pd.DataFrame:
    """One row per rule, the costliest first: jobs, CPU and wall minutes, the longest job, peak RSS."""
    table = benchmarks.groupby("rule").agg(jobs=("s", "size"), cpu_min=("cpu_s", "sum"), wall_min=("s", "sum"),
                                           max_job_s=("s", "max"), max_rss=("max_rss", "max"))
    table[["cpu_min", "wall_min"]] /= 60
    return table.sort_values("cpu_min", ascending=False)


def estimate(benchmarks: pd.DataFrame, chains: list[list[tuple[str, str]]], cores: int) -> dict:
    """The least wall time on `cores` cores: every job's wall time spread over the cores, or the critical path,
    whichever is longer (jobs run with the config's threads_per_job, so job wall time is what a core is held)."""
    path = critical_path(benchmarks, chains)
    critical = sum(s for *_, s in path if not math.isnan(s)) / 60
    wall = benchmarks.s.sum() / 60
    timed = set(zip(benchmarks.rule, benchmarks.job))
    untimed = {step for chain in chains for step in chain if step not in timed}
    return {"jobs": len(benchmarks), "untimed_chain_jobs": len(untimed), "cpu_minutes": benchmarks.cpu_s.sum() / 60, "job_wall_minutes": wall,
            "critical_minutes": critical, "cores": cores, "least_wall_minutes": max(wall / cores, critical),
            "critical_path": path}


def report(benchmarks: pd.DataFrame, chains: list[list[tuple[str, str]]], budget: dict) -> tuple[str, bool]:
    """The printed table and whether the run fits `budget` ({cores, wall_minutes}); a run with jobs of the DAG's
    chains not yet timed cannot be said to fit."""
    est = estimate(benchmarks, chains, budget["cores"])
    lines = [f"{'rule':22s} {'jobs':>5s} {'CPU min':>8s} {'wall min':>9s} {'longest s':>10s} {'peak RSS MB':>12s}"]
    lines += [f"{r.Index:22s} {r.jobs:5d} {r.cpu_min:8.1f} {r.wall_min:9.1f} {r.max_job_s:10.0f} {r.max_rss:12.0f}"
              for r in per_rule(benchmarks).itertuples()]
    fits = est["least_wall_minutes"] <= budget["wall_minutes"] and not est["untimed_chain_jobs"]
    path = " -> ".join(f"{rule}:{job}" for rule, job, _ in est["critical_path"])
    lines.append(f"\n{est['jobs']} jobs: {est['cpu_minutes']:.1f} CPU-minutes, {est['job_wall_minutes']:.1f} "
                 f"job-minutes of wall time; critical path {est['critical_minutes']:.1f} min ({path})")
    lines.append(f"least wall time on {budget['cores']} cores: {est['least_wall_minutes']:.1f} min, budget "
                 f"{budget['wall_minutes']} min: {'within budget' if est['least_wall_minutes'] <= budget['wall_minutes'] else 'OVER BUDGET'} "
                 f"({est['least_wall_minutes'] / budget['wall_minutes']:.0%} of it; job start-up outside the "
                 "benchmarked part and Snakemake's own time come on top)")
    if est["untimed_chain_jobs"]:
        lines.append(f"INCOMPLETE: {est['untimed_chain_jobs']} jobs of the DAG have no benchmark file yet, so these "
                     "figures are a lower bound; finish the run (snakemake reproduce) and ask again")
    return "\n".join(lines), fits


def save_reference(benchmarks: pd.DataFrame, path: str | Path, provenance: dict) -> None:
    """Each rule's job count and median job wall and CPU seconds, under a first line naming the run that made them
    (commit, CPU, cores): a later run's prior for the rules it has not timed yet."""
    table = benchmarks.groupby("rule").agg(jobs=("s", "size"), median_s=("s", "median"),
                                           median_cpu_s=("cpu_s", "median")).round(1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {json.dumps(provenance, sort_keys=True)}\n" + table.to_csv())


def load_reference(path: str | Path | None) -> pd.DataFrame:
    """save_reference's file as benchmark rows (one per rule, at its median job times); none for no path."""
    if not path:
        return pd.DataFrame(columns=BENCHMARK_COLUMNS)
    table = pd.read_csv(path, comment="#")
    return pd.DataFrame({"rule": table.rule, "job": "reference", "s": table.median_s, "cpu_s": table.median_cpu_s,
                         "max_rss": math.nan})[BENCHMARK_COLUMNS]


def with_reference(benchmarks: pd.DataFrame, reference: pd.DataFrame | None) -> pd.DataFrame:
    """The benchmark rows, and the reference's row for each rule they do not time."""
    extra = reference[~reference.rule.isin(benchmarks.rule)] if reference is not None else []
    return pd.concat([benchmarks, extra], ignore_index=True) if len(extra) else benchmarks


_reference: dict[str, str | None] = {"path": None}


def use_reference(path: str | None) -> None:
    """The reference timings RunProgress falls back on (the Snakefile passes the config's `budget.reference`: the
    logger plugin runs in Snakemake's process but never sees the config)."""
    if path and not Path(path).is_file():
        raise FileNotFoundError(f"budget.reference: {path} does not exist; write it with `molebench bench --pipeline "
                                f"--save-reference {path}` after a whole run, or remove the key")
    _reference["path"] = path


def stage(rule: str) -> str:
    """The stage a Snakemake rule counts under, as its benchmark folder names it: a rule made per batch is named
    `{stage}__{batch}` (the evaluate batches of workflow/rules/methods.smk)."""
    return rule.split("__")[0]


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of `snakemake -n`: stage -> jobs still to run (empty when nothing is left)."""
    counts = {}
    if "Job stats:" not in dry_run_output:
        return counts
    for line in dry_run_output.split("Job stats:")[-1].splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[stage(parts[0])] = counts.get(stage(parts[0]), 0) + int(parts[1])
    return counts


def projection(left: dict[str, int], benchmarks: pd.DataFrame) -> pd.DataFrame:
    """One row per rule with jobs left, the costliest first: jobs, its median job wall and CPU seconds so far, and
    the wall and CPU minutes its jobs left need at those medians (NaN for a rule no finished job times). The target
    rule counts nothing (it runs no code)."""
    jobs = pd.Series({rule: n for rule, n in left.items() if rule not in ("all", "total", "reproduce")}, dtype=float)
    median = benchmarks.groupby("rule")[["s", "cpu_s"]].median().reindex(jobs.index)
    table = pd.DataFrame({"jobs": jobs.astype(int), "median_s": median.s, "median_cpu_s": median.cpu_s,
                          "wall_min": jobs * median.s / 60, "cpu_min": jobs * median.cpu_s / 60})
    return table.sort_values("cpu_min", ascending=False)


def remaining(left: dict[str, int], benchmarks: pd.DataFrame, cores: int) -> tuple[float, list[str]]:
    """(minutes left on `cores` cores, rules with jobs left and no finished job to time them by): each job left
    costs its rule's median wall time so far."""
    table = projection(left, benchmarks)
    return table.wall_min.sum() / cores, list(table.index[table.median_s.isna()])


def _referenced(left: dict[str, int], times: pd.DataFrame) -> list[str]:
    """Rules with jobs left that only the reference times."""
    return sorted({r for r, j in zip(times.rule, times.job) if j == "reference"} & set(left))


def progress_line(left: dict[str, int], done: int, benchmarks: pd.DataFrame, cores: int,
                  reference: pd.DataFrame | None = None) -> str:
    if not left:
        return f"nothing left to run ({done} jobs have benchmark files)"
    times = with_reference(benchmarks, reference)
    minutes, unknown = remaining(left, times, cores)
    cpu_minutes = projection(left, times).cpu_min.sum() / cores
    line = (f"{done} jobs done, {left.get('total', sum(left.values()))} to run: {_bound(unknown)} {minutes:.0f} min "
            f"left on {cores} cores (each rule's median job time so far; {cpu_minutes:.0f} min by its median CPU time, "
            "which shared cores do not inflate)")
    if referenced := _referenced(left, times):
        line += f"; at the reference run's times: {', '.join(referenced)}"
    return line + (f"; not yet timed: {', '.join(unknown)} ({sum(left[r] for r in unknown)} jobs)" if unknown else "")


def _bound(untimed: list[str]) -> str:
    """An estimate that leaves out rules with no time at all is a lower bound."""
    return "at least" if untimed else "about"


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


class RunProgress:
    """One Snakemake run followed from its log events: when the last job of a rule finishes, or a job finishes
    `every` seconds after the last line (a stage of the mini run computes for half an hour), a line with the run's
    jobs done / total, the time elapsed and about how long the rest needs (`remaining`: each rule's jobs left x its
    median job wall time, this run's jobs first, else the benchmark files earlier runs left beside this run's, else
    the reference timings of `use_reference`; spread over the cores). Snakemake's own "n of N steps" says neither
    when the run will end nor which stage is done. Jobs are timed from their start to their end as the main process
    sees them."""

    def __init__(self, clock=time.monotonic, every: float = 600.0):
        self.clock, self.start, self.every = clock, clock(), every
        self.last_line = self.start
        self.cores = 1
        self.planned: dict[str, int] = {}  # rule -> jobs this run runs
        self.done: dict[str, int] = {}
        self.running: dict[int, tuple[str, float]] = {}  # jobid -> (rule, start)
        self.timed: list[tuple[str, float]] = []  # (rule, seconds) of this run's finished jobs
        self.earlier = pd.DataFrame(columns=BENCHMARK_COLUMNS)  # benchmark files of earlier runs
        self.read_earlier = False

    def plan(self, stats: dict[str, int]) -> None:
        """Snakemake's job stats (rule -> jobs, and `total`), counted by stage."""
        self.planned = {}
        for rule, n in stats.items():
            if rule != "total":
                self.planned[stage(rule)] = self.planned.get(stage(rule), 0) + n

    def job_started(self, jobid: int, rule: str, benchmark: str | None = None) -> None:
        self.running[jobid] = (stage(rule), self.clock())
        if benchmark and not self.read_earlier and "benchmarks" in Path(benchmark).parts:
            parts = Path(benchmark).parts  # <results>/benchmarks/<rule>/<job>.tsv: read the folder once
            results = Path(*parts[:len(parts) - 1 - parts[::-1].index("benchmarks")])
            self.earlier = with_reference(load_benchmarks(benchmark_files(results)),
                                          load_reference(_reference["path"]))
            self.read_earlier = True

    def job_finished(self, jobid: int) -> str | None:
        """The progress line when this job was its rule's last or no line came for `every` seconds, else None."""
        if jobid not in self.running:
            return None
        rule, started = self.running.pop(jobid)
        self.timed.append((rule, self.clock() - started))
        self.done[rule] = self.done.get(rule, 0) + 1
        if self.done[rule] < self.planned.get(rule, 0) and self.clock() - self.last_line < self.every:
            return None
        self.last_line = self.clock()
        return self.line(rule)

    def line(self, rule: str) -> str:
        done, total = sum(self.done.values()), sum(self.planned.values())
        left = {r: n - self.done.get(r, 0) for r, n in self.planned.items() if n > self.done.get(r, 0)}
        now = pd.DataFrame(self.timed, columns=["rule", "s"]).assign(job="", cpu_s=math.nan)  # wall time only
        times = pd.concat([now, self.earlier[~self.earlier.rule.isin(now.rule)][["rule", "job", "s", "cpu_s"]]],
                          ignore_index=True).astype({"s": float, "cpu_s": float})
        minutes, untimed = remaining(left, times, self.cores)
        of_rule = (f"all {self.done[rule]}" if rule not in left else
                   f"{self.done[rule]} of {self.planned[rule]}")
        text = (f"[molebench] {rule}: {of_rule} jobs done | {done} of {total} jobs, "
                f"{_minutes(self.clock() - self.start)} elapsed")
        if not left:
            return text + ", nothing left"
        text += f", {_bound(untimed)} {_minutes(minutes * 60)} left on {self.cores} cores"
        notes = [f"at the reference run's times: {', '.join(referenced)}"] if (
            referenced := _referenced(left, times)) else []
        notes += [f"not yet timed: {', '.join(untimed)}"] if untimed else []
        return text + (f" ({'; '.join(notes)})" if notes else "")
