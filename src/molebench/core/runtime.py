"""What every job shares: the job's log and threads, offline hub settings, checkpoints beside outputs, and the file
names one job writes inside its output for another. Imports no torch: a job that only writes data or tables starts in
a fraction of a second instead of the 2 s that importing torch costs."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from pathlib import Path

GAIN_FILE = "gain.json"  # in a pool LoRA's folder: its own-task scores with and without it, per test example


@contextlib.contextmanager
def logged(log_file: str | None, threads: int = 1, offline: bool = True):
    """Run a stage: torch threads, offline hub settings, and stdout/stderr (progress bars too) into the rule's log."""
    torch = sys.modules.get("torch")  # imported at the top of a stage module that computes; never imported here
    if torch is not None:
        torch.set_num_threads(threads)
    if offline:
        set_offline()
    if log_file is None:
        yield
        return
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            yield
        except BaseException:
            traceback.print_exc()  # into the log, which Snakemake shows when the job fails
            raise


def set_offline() -> None:
    """No hub access at the offline scales: a missing asset fails at once instead of hanging on the network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def checkpoint_dir(out_dir: str) -> Path:
    """Checkpoints live beside an output, not in it: Snakemake deletes the outputs of a failed job, not their
    checkpoints, so a re-run resumes. Removed once the output is complete."""
    out = Path(out_dir)
    return out.parent / f".{out.name}.checkpoint"
