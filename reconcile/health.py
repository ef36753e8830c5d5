"""Whether the install is healthy, from the job history and the heartbeats. Pure: `now` comes in.

A job is `failed` when its last finished run failed (or was killed), `overdue` when
its newest slot that should have finished by now (the slot plus the grace) has no
successful run since, and `ok` otherwise. The scheduler is `running` while its heartbeat
is fresh, `stopped` when it once ran and has been silent for several beats, and
`not used` when it never ran (cron or timers run the jobs instead).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from reconcile.clock import format_timestamp
from reconcile.schedule import latest_slot
from reconcile.store.jobs import JobRun

HEARTBEAT = dt.timedelta(seconds=30)       # how often the scheduler beats
SILENT_AFTER = 4 * HEARTBEAT               # missed beats before it counts as stopped

EXIT_FAILED = 6    # a job's last run failed
EXIT_OVERDUE = 7   # a job has no successful run for a slot that is past (or the scheduler stopped)


@dataclass(frozen=True)
class Verdict:
    state: str      # ok | failed | overdue (jobs); running | stopped | not used (scheduler)
    detail: str

    @property
    def exit_code(self) -> int:
        return {"failed": EXIT_FAILED, "overdue": EXIT_OVERDUE, "stopped": EXIT_OVERDUE}.get(self.state, 0)


def job_verdict(runs: Sequence[JobRun], expression: str, timezone: str, now: dt.datetime,
                grace: dt.timedelta) -> Verdict:
    """`runs`: the job's recent runs, newest first."""
    finished = [r for r in runs if r.status in ("succeeded", "failed", "abandoned")]
    if finished and finished[0].status != "succeeded":
        last = finished[0]
        return Verdict("failed", f"the last run ({format_timestamp(last.started_at)}) {last.status}"
                                 + (f" with exit {last.exit_code}" if last.exit_code is not None else ""))
    due = latest_slot(expression, timezone, now - grace)
    succeeded = [r.started_at for r in runs if r.status == "succeeded"]
    if due is not None and not any(started >= due for started in succeeded):
        since = (f"; the last success was {format_timestamp(max(succeeded))}" if succeeded
                 else "; it never succeeded")
        return Verdict("overdue", f"no successful run for the slot {format_timestamp(due)}{since}")
    if not succeeded:
        return Verdict("ok", "no run yet, and none due")
    return Verdict("ok", f"last success {format_timestamp(max(succeeded))}")


def scheduler_verdict(seen: dt.datetime | None, now: dt.datetime) -> Verdict:
    if seen is None:
        return Verdict("not used", "the scheduler has never run against this store")
    ago = now - seen
    if ago > SILENT_AFTER:
        return Verdict("stopped", f"the scheduler was last seen {_ago(ago)} ago ({format_timestamp(seen)})")
    return Verdict("running", f"the scheduler was seen {_ago(ago)} ago")


def _ago(delta: dt.timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
