"""Snakemake's own cost per job under its two built-in schedulers: a generated workflow of many small jobs (half of
them ready at once, as when a slice of pool LoRAs or scorings becomes ready) run with `--scheduler ilp` and
`--scheduler greedy` in turn. The jobs only sleep, so the CPU time measured is Snakemake's own, and the ratio says what
the ILP costs on top of the greedy selection that the profiles choose."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCHEDULERS = ("ilp", "greedy")

SNAKEFILE = """
rule all:
    input: expand("out/{{i}}.txt", i=range({jobs}))

rule prepare:
    output: "in/{{i}}.txt"
    shell: "echo {{wildcards.i}} > {{output}}"

rule work:
    input: "in/{{i}}.txt"
    output: "out/{{i}}.txt"
    shell: "sleep {sleep}; cp {{input}} {{output}}"
"""


def _one_run(folder: Path, scheduler: str) -> tuple[float, float]:
    """(wall s, CPU s of Snakemake and its jobs) of one run from nothing."""
    for sub in ("in", "out", ".snakemake"):
        shutil.rmtree(folder / sub, ignore_errors=True)
    before = os.times()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--scheduler", scheduler, "--quiet", "all"],
                   cwd=folder, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def run(pairs: int = 3, jobs: int = 150, sleep: float = 0.5) -> list[dict]:
    """One row per scheduler: the medians over `pairs` runs made in turn (ilp, greedy, ilp, ...), and the ratio to
    greedy. `jobs` prepare jobs and `jobs` work jobs, each work job sleeping `sleep` seconds."""
    times = {s: [] for s in SCHEDULERS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "Snakefile").write_text(SNAKEFILE.format(jobs=jobs, sleep=sleep))
        for _ in range(pairs):
            for scheduler in SCHEDULERS:
                times[scheduler].append(_one_run(folder, scheduler))
    medians = {s: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for s, t in times.items()}
    greedy_wall, greedy_cpu = medians["greedy"]
    return [{"scheduler": s, "jobs": 2 * jobs, "runs": pairs, "median_wall_s": round(wall, 2),
             "median_cpu_s": round(cpu, 2), "cpu_ratio_to_greedy": round(cpu / greedy_cpu, 2),
             "wall_ratio_to_greedy": round(wall / greedy_wall, 2)} for s, (wall, cpu) in medians.items()]
