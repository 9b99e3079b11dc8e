"""Snakemake's own cost per job: a generated workflow of many small jobs (half of them ready at once, as when a slice
of pool LoRAs or scorings becomes ready) run in turn with `--scheduler ilp`, with `--scheduler greedy`, and with
greedy plus the one re-evaluation timer of `molebench.scheduling` (what this workflow's Snakefile and profiles run).
The jobs only sleep, so the CPU time measured is Snakemake's own, and the ratios say what each costs on top of the
workflow's setting."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# name -> (--scheduler, whether the Snakefile installs molebench.scheduling's one timer)
SETTINGS = {"ilp": ("ilp", False), "greedy": ("greedy", False), "greedy, one timer": ("greedy", True)}
WORKFLOW = "greedy, one timer"

SNAKEFILE = """
{install}
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
INSTALL = "from molebench import scheduling\nscheduling.install()\n"


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
    """One row per setting: the medians over `pairs` runs made in turn (ilp, greedy, greedy with one timer, ilp, ...),
    and the ratios to the workflow's setting. `jobs` prepare jobs and `jobs` work jobs, each work job sleeping
    `sleep` seconds."""
    times = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        for name, (_, one_timer) in SETTINGS.items():
            folders[name] = Path(tmp) / str(len(folders))
            folders[name].mkdir()
            (folders[name] / "Snakefile").write_text(SNAKEFILE.format(install=INSTALL if one_timer else "",
                                                                      jobs=jobs, sleep=sleep))
        for _ in range(pairs):
            for name, (scheduler, _) in SETTINGS.items():
                times[name].append(_one_run(folders[name], scheduler))
    medians = {n: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for n, t in times.items()}
    base_wall, base_cpu = medians[WORKFLOW]
    return [{"scheduler": n, "jobs": 2 * jobs, "runs": pairs, "median_wall_s": round(wall, 2),
             "median_cpu_s": round(cpu, 2), "cpu_ratio_to_workflow": round(cpu / base_cpu, 2),
             "wall_ratio_to_workflow": round(wall / base_wall, 2)} for n, (wall, cpu) in medians.items()]
