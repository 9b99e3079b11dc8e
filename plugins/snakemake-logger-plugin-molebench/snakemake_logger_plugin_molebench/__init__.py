"""Snakemake logger plugin `molebench` (`--logger molebench`, set in both profiles): adds a progress line per
finished rule (and every 10 minutes within a long one) to Snakemake's own console output, from
molebench.report.budget.RunProgress.

A separate, non-editable package because Snakemake finds logger plugins as top-level modules named
snakemake_logger_plugin_<name>, which an editable install of molebench does not expose (`make setup` installs it).
It writes to stderr beside Snakemake's default handler, which stays: `writes_to_stream` is False so that Snakemake
keeps that handler (it allows one stream handler and would otherwise drop its own)."""

import sys
from logging import LogRecord

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent

from molebench.report.budget import RunProgress


class LogHandler(LogHandlerBase):
    def __post_init__(self) -> None:
        self.progress = RunProgress()

    def emit(self, record: LogRecord) -> None:
        event = getattr(record, "event", None)
        if event == LogEvent.RESOURCES_INFO and getattr(record, "cores", None):
            self.progress.cores = record.cores
        elif event == LogEvent.RUN_INFO and not self.common_settings.dryrun:
            self.progress.plan(record.stats)
        elif event == LogEvent.JOB_INFO and not self.common_settings.dryrun:
            self.progress.job_started(record.jobid, record.rule_name, getattr(record, "benchmark", None))
        elif event == LogEvent.JOB_FINISHED and (line := self.progress.job_finished(record.job_id)):
            # on a line of its own: this handler runs in its own thread, so it may write while Snakemake's handler
            # is between a message and its newline
            print(f"\n{line}", file=sys.stderr, flush=True)

    # the interface's declarations, as class attributes (they override its abstract properties)
    writes_to_stream = False  # Snakemake's own console handler stays; these lines go beside it
    writes_to_file = False
    has_filter = True  # every event it needs, whatever Snakemake's quiet settings
    has_formatter = True
    needs_rulegraph = False
