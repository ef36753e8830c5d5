"""Metrics for Prometheus, as a node_exporter textfile-collector file (`metrics.textfile`).

Written after every job run from what the store holds, so the file always describes the
newest state whichever job ran last. Written atomically (a temporary file beside it, then
a rename), as the textfile collector asks: a scrape never reads half a file.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from reconcile.store import flags as flag_store
from reconcile.store import jobs as history
from reconcile.store import readers
from reconcile.store.jobs import JobRun


@dataclass
class Facts:
    """What the metrics say, gathered from the store."""

    jobs: Mapping[str, list[JobRun]]                      # job -> its recent runs, newest first
    flagged_by_rule: Mapping[str, int] = field(default_factory=dict)
    waste: Mapping[str, Decimal] = field(default_factory=dict)   # currency -> flagged monthly cost
    sync_counts: Mapping[str, int] = field(default_factory=dict)  # the newest complete sync's counts
    sync_as_of: dt.datetime | None = None


def gather(engine: Engine, jobs: Iterable[str]) -> Facts:
    """The facts from the store: the jobs' histories, and the newest complete sync with its flags."""
    facts = Facts(jobs={job: history.recent(engine, job, 20) for job in jobs})
    with engine.connect() as connection:
        run = readers.latest_complete_run(connection)
        if run is not None:
            facts.sync_counts = {k: int(v) for k, v in run.counts.items() if isinstance(v, int)}
            facts.sync_as_of = run.as_of
            facts.flagged_by_rule = flag_store.flagged_by_rule(connection, run.id)
            waste = flag_store.waste_by_run(connection, [run.id])
            facts.waste = dict(zip(waste["currency"], waste["waste"], strict=True))
    return facts


def render(facts: Facts) -> str:
    """The Prometheus text exposition format (version 0.0.4)."""
    out: list[str] = []

    def family(name: str, kind: str, text: str, samples: Iterable[tuple[str, float | int | Decimal]]) -> None:
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{labels} {_number(value)}" for labels, value in samples)

    last_success, duration, exit_code = [], [], []
    for job, runs in sorted(facts.jobs.items()):
        label = f'{{job="{job}"}}'
        success = next((r for r in runs if r.status == "succeeded"), None)
        finished = next((r for r in runs if r.status in ("succeeded", "failed", "abandoned")), None)
        if success is not None:
            last_success.append((label, success.finished_at.timestamp() if success.finished_at else 0))
            if success.finished_at is not None:
                duration.append((label, (success.finished_at - success.started_at).total_seconds()))
        if finished is not None and finished.exit_code is not None:
            exit_code.append((label, finished.exit_code))
    family("reconcile_job_last_success_timestamp_seconds", "gauge",
           "When each job last finished successfully (Unix time).", last_success)
    family("reconcile_job_last_success_duration_seconds", "gauge",
           "How long each job's last successful run took.", duration)
    family("reconcile_job_last_exit_code", "gauge", "The exit code of each job's last finished run.", exit_code)
    family("reconcile_flagged_numbers", "gauge", "Flagged numbers per rule, as of the newest evaluated run.",
           [(f'{{rule="{rule}"}}', count) for rule, count in sorted(facts.flagged_by_rule.items())])
    family("reconcile_monthly_waste", "gauge",
           "What the flagged numbers cost a month, per currency (release them to save it).",
           [(f'{{currency="{currency}"}}', amount) for currency, amount in sorted(facts.waste.items())])
    counts = facts.sync_counts
    family("reconcile_sync_data_issues", "gauge", "Records the newest sync refused as data issues.",
           [("", counts.get("data_issues", 0))])
    family("reconcile_sync_http_requests", "gauge", "HTTP requests the newest sync made.",
           [("", counts.get("requests", 0))])
    family("reconcile_sync_http_rate_limited", "gauge", "Answers 429 (rate limited) the newest sync met.",
           [("", counts.get("rate_limited", 0))])
    if facts.sync_as_of is not None:
        family("reconcile_sync_as_of_timestamp_seconds", "gauge", "The instant the newest complete sync describes.",
               [("", facts.sync_as_of.timestamp())])
    return "\n".join(out) + "\n"


def _number(value: float | int | Decimal) -> str:
    return format(value, "f") if isinstance(value, Decimal) else repr(float(value)) if isinstance(value, float) \
        else str(value)


def write_textfile(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step (a temporary file in the same folder, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
