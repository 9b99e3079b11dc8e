"""One pending re-evaluation timer in Snakemake's job scheduler, instead of one more with every finished job.

Snakemake 9's scheduler ends every scheduling pass by starting a `threading.Timer` that wakes it again after the job
rate limit's timespan (`--max-jobs-per-timespan`, default 100/1s), so that jobs the limit held back get another
chance. A pass woken by such a timer starts the next one, and a pass woken by a finished job starts one more: the
chains never end, so after N finished jobs the scheduler runs about N passes a second, each re-checking the inputs of
every ready job. Seen in a RAMoLE slice of this workflow (268 jobs): 76 timer threads alive after 104 jobs, the
Snakemake process at 44% of one of the machine's 2 cores. Waking the scheduler once per timespan is all the limit
needs, so one timer at a time is kept; it is a daemon thread, so the process no longer waits for it at exit.
`molebench bench --scheduler` measures the difference side by side.

Written here because Snakemake offers no setting for it: a longer timespan thins the passes but keeps the process
alive that long after the last job (the timers are not daemons).
"""

from __future__ import annotations

import threading
import warnings

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


def install() -> bool:
    """Make the scheduler keep one re-evaluation timer (idempotent). A Snakemake without the method runs unchanged,
    with a warning: the change saves CPU, the workflow does not depend on it."""
    if not hasattr(JobScheduler, _PATCHED):
        warnings.warn(f"snakemake's JobScheduler has no {_PATCHED}: molebench.scheduling left it alone; the "
                      f"scheduler may use more CPU than needed (update molebench/scheduling.py for this Snakemake)",
                      stacklevel=2)
        return False
    setattr(JobScheduler, _PATCHED, _one_timer)
    return True
