"""The nightly job: sync, then the nightly review of that run, rendered."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from reconcile.analysis.digests import unrouted_line
from reconcile.analysis.flags import FlagResult
from reconcile.analysis.nightly import NightlySummary
from reconcile.bulk import bulk_work
from reconcile.clock import Clock
from reconcile.config import Settings
from reconcile.errors import DeliveryError
from reconcile.jobs.runtime import make_client, sync_options, webhook_for
from reconcile.money import format_money
from reconcile.progress import Progress, progress_for
from reconcile.reports.nightly import NightlyFiles, render_nightly
from reconcile.review.nightly import evaluate_run, record_flags, settings_view, summarise_run
from reconcile.sync import SyncSummary, run_sync

log = logging.getLogger("reconcile.nightly")


@dataclass
class NightlyOutcome:
    sync: SyncSummary | None
    summary: NightlySummary
    result: FlagResult
    files: NightlyFiles

    def report_line(self) -> str:
        s = self.summary
        savings = ", ".join(format_money(t.amount, t.currency) for t in s.savings) or "nothing"
        unrouted = f"; {unrouted_line(s.unrouted, shown=3)}" if s.unrouted else ""
        return (f"nightly report as of {s.as_of:%Y-%m-%d %H:%M}Z: {s.owned:,} numbers, {s.flagged:,} flagged "
                f"(saving {savings} a month), written to {self.files.directory}{unrouted}")

    def line(self) -> str:
        return f"{self.sync.line()}; {self.report_line()}" if self.sync else self.report_line()

    def counts(self) -> dict[str, int]:
        sync = self.sync
        return {"numbers": self.summary.owned, "flagged": self.summary.flagged, "unrouted": len(self.summary.unrouted),
                **({"versions_opened": sync.versions_opened, "versions_closed": sync.versions_closed,
                    "calls_added": sync.calls_added, "data_issues": sync.data_issues, "requests": sync.requests,
                    "rate_limited": sync.rate_limited}
                   if sync else {})}

    def raise_for_failures(self) -> None:
        """A nightly that returned did all its work."""


def default_out_dir(settings: Settings, as_of: dt.datetime) -> Path:
    return settings.reports_dir / f"nightly-{as_of:%Y-%m-%d}"


@bulk_work()
def report_nightly(settings: Settings, engine: Engine, as_of: dt.datetime | None = None,
                   out_dir: Path | None = None) -> NightlyOutcome:
    """The nightly report of the newest complete run (at or before `as_of`), from the store."""
    evaluation = evaluate_run(settings, engine, as_of, record_history=False)

    def summarise() -> NightlySummary:  # while the flag files are written alongside: record the flags, then sum up
        record_flags(settings, engine, evaluation)
        return summarise_run(settings, engine, evaluation)

    summary, files = render_nightly(evaluation.result, summarise, settings_view(settings),
                                    out_dir or default_out_dir(settings, evaluation.at))
    return NightlyOutcome(None, summary, evaluation.result, files)


def run_nightly(settings: Settings, engine: Engine, clock: Clock, progress: Progress | None = None,
                out_dir: Path | None = None) -> NightlyOutcome:
    """The whole nightly job: sync, then the report as of the sync. The caller holds the run lock."""
    with make_client(settings) as client:
        sync = run_sync(client, engine, clock=clock, options=sync_options(settings), progress=progress or progress_for())
    outcome = report_nightly(settings, engine, None, out_dir)
    outcome.sync = sync
    if settings.notify.webhook_headlines:
        announce(settings, f"reconcile nightly: {outcome.report_line()}")
    return outcome


def announce(settings: Settings, text: str) -> None:
    """Post a headline to the webhook; a failure to post is logged, never a failed night."""
    hook = webhook_for(settings)
    if hook is None:
        log.warning("notify.webhook_headlines is on but no webhook URL is set")
        return
    try:
        hook.post(text)
    except DeliveryError as exc:
        log.warning("the nightly headline was not posted: %s", exc)
    finally:
        hook.close()
