"""How Snakemake schedules this workflow's jobs on one machine: one re-evaluation timer, and memory claims that let a
job killed for memory run again alone.

**One pending re-evaluation timer** in Snakemake's job scheduler, instead of one more with every finished job.

Snakemake 9's scheduler ends every scheduling pass by starting a `threading.Timer` that wakes it again after the job
rate limit's timespan (`--max-jobs-per-timespan`, default 100/1s), so that jobs the limit held back get another
chance. A pass woken by such a timer starts the next one, and a pass woken by a finished job starts one more: the
chains never end, so after N finished jobs the scheduler runs about N passes a second, each re-checking the inputs of
every ready job. Seen in a RAMoLE slice of this workflow (268 jobs): 76 timer threads alive after 104 jobs, the
Snakemake process at 44% of one of the machine's 2 cores. Waking the scheduler once per timespan is all the limit
needs, so one timer at a time is kept; it is a daemon thread, so the process no longer waits for it at exit.
`molebench bench --scheduler` measures the difference side by side.

**A killed run's lock is stale.** A run killed outright (power loss, out of memory, a closed terminal) leaves
`.snakemake/locks` behind, and the next run stops at once with "Directory cannot be locked". `stale_lock` tells such a
lock from a live run's: no process whose working directory is this one still runs Snakemake or one of its jobs;
`make reproduce` then unlocks (`molebench unlock-stale`) and the run picks up where it stopped.

Written here because Snakemake offers no setting for it: a longer timespan thins the passes but keeps the process
alive that long after the last job (the timers are not daemons).

**A job killed for memory runs again alone.** Jobs of this workflow differ in memory by more than 10x (a pool LoRA
about 1.3 GB, MoLE's gates over 128 LoRAs about 19 GB), and the local scheduler knows only cores, so of two such
jobs side by side on a 24 GB machine the kernel kills one. `claim_memory` gives the run the machine's memory as its
`mem_mb` unless the command line sets one (`--resources mem_mb=...`); the default profile has every job claim 2 GB of
it on its first attempt and all of it on its retry (`retries: 1`), so the retry starts when the jobs beside it have
ended and nothing starts beside it. Snakemake 9 re-evaluates a retried job's resources but keeps the claim its
scheduler made of the first attempt (`Job._scheduler_resources`); `install` resets that claim too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import psutil
from snakemake.jobs import Job
from snakemake.scheduling.job_scheduler import JobScheduler

_PATCHED = "_schedule_reevalutation"  # Snakemake's own spelling
_LOCK = threading.Lock()


def _one_timer(scheduler, delay: float) -> None:
    with _LOCK:
        if getattr(scheduler, "_reevaluation_pending", False):
            return  # a pass is already due within the timespan
        scheduler._reevaluation_pending = True

    def wake() -> None:
        scheduler._reevaluation_pending = False  # before the pass it wakes, so that pass starts the next timer
        scheduler._open_jobs.release()

    timer = threading.Timer(delay, wake)
    timer.daemon = True
    timer.start()


def _set_attempt(job, attempt: int) -> None:
    job._resources = None
    job._scheduler_resources = None  # what Snakemake's own setter leaves: the claim of the first attempt
    job._attempt = attempt


def install() -> bool:
    """Make the scheduler keep one re-evaluation timer and re-claim a retried job's resources (idempotent). A
    Snakemake without these internals runs unchanged, with a warning: the workflow does not depend on them."""
    attempt = getattr(Job, "attempt", None)
    if not (hasattr(JobScheduler, _PATCHED) and isinstance(attempt, property)
            and hasattr(Job, "_get_scheduler_resources")):
        warnings.warn(f"snakemake's JobScheduler has no {_PATCHED} or its Job no attempt property: "
                      f"molebench.scheduling left them alone; the scheduler may use more CPU than needed and a retried "
                      f"job keeps its first claim (update molebench/scheduling.py for this Snakemake)", stacklevel=2)
        return False
    setattr(JobScheduler, _PATCHED, _one_timer)
    Job.attempt = attempt.setter(_set_attempt)
    return True


def machine_memory_mb() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20


def claim_memory(workflow) -> None:
    """The run's `mem_mb`: the command line's, else the machine's memory (registered, so the scheduler counts it).
    Local runs only (no `--jobs` for a cluster's nodes, as Snakemake's own scheduler tells them): Snakemake caps
    every job's resources at the run's, so on a cluster it would cap each job's memory request at this machine's."""
    if workflow.nodes is None and "mem_mb" not in workflow.global_resources:
        workflow.register_resource("mem_mb", machine_memory_mb())


def snakemake_processes(workdir: str | Path) -> list[int]:
    """Live processes working in `workdir` that run Snakemake or one of its jobs (a job's script lives under
    .snakemake/), this process and its parents left out."""
    workdir, own = Path(workdir).resolve(), {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        info = proc.info
        if info["pid"] not in own and info["cwd"] and Path(info["cwd"]) == workdir and any(
                "snakemake" in arg for arg in info["cmdline"] or []):
            found.append(info["pid"])
    return found


def stale_lock(workdir: str | Path = ".") -> bool:
    """Snakemake's lock is there and no Snakemake process of this directory is alive to hold it."""
    return any((Path(workdir) / ".snakemake" / "locks").glob("*")) and not snakemake_processes(workdir)


def unlock_stale(workdir: str | Path = ".") -> str | None:
    """Remove a stale lock with `snakemake --unlock`; what was done, or None when there was nothing to do."""
    if not stale_lock(workdir):
        return None
    done = subprocess.run([sys.executable, "-m", "snakemake", "--unlock", "--quiet"], cwd=workdir, check=False,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"snakemake --unlock failed in {workdir}:\n{done.stderr[-2000:]}")
    return ("a killed run left Snakemake's lock and no Snakemake process of this directory is alive: unlocked "
            "(snakemake --unlock); the run picks up where it stopped")
