"""The monthly job: sync the month's invoices, then the finance review of the month."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from jobs.runtime import make_client, open_store
from reconcile.analysis import monthly
from reconcile.analysis.billing import Period
from reconcile.analysis.focus import FocusExport
from reconcile.analysis.invoices import reconcile_invoices
from reconcile.analysis.monthly import MonthlyReview
from reconcile.analysis.nightly import totals_by_currency
from reconcile.clock import Clock, format_timestamp
from reconcile.config import Settings
from reconcile.delivery import UNKNOWN_HINT, deliver_once
from reconcile.errors import ConfigError, DeliveryError, StoreError
from reconcile.invoice_sync import InvoiceSyncSummary, run_invoice_sync
from reconcile.mail import Attachment, Transport, build_message, message_id_for, transport_for
from reconcile.progress import Progress, progress_for
from reconcile.store import flags as flag_store
from reconcile.store import invoices as invoice_store
from reconcile.store import readers
from reports.monthly import MonthlyFiles, render_monthly
from reports.review_mail import render_review_mail

log = logging.getLogger("reconcile.monthly")
TOP_AGENTS = 25


@dataclass
class MonthlyOutcome:
    invoices: InvoiceSyncSummary | None
    review: MonthlyReview
    files: MonthlyFiles
    sent: list[str] = field(default_factory=list)
    already_sent: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        mailed = f"; sent to {', '.join(self.sent)}" if self.sent else ""
        if self.unknown:
            mailed += f"; NOT resent to {', '.join(self.unknown)}: {UNKNOWN_HINT}"
        return (f"monthly review of {self.review.period}: {self.review.headline}; written to "
                f"{self.files.directory}{mailed}")


def previous_period(now: dt.datetime) -> Period:
    return Period.containing(now.astimezone(dt.UTC)).shifted(-1)


def check_complete(period: Period, now: dt.datetime) -> None:
    if period.end > now:
        raise ConfigError(f"--period {period}: the month is not over yet (it ends {format_timestamp(period.end)}); "
                          "review a complete month")


def default_out_dir(settings: Settings, period: Period) -> Path:
    return settings.reports_dir / f"monthly-{period}"


def build_monthly(settings: Settings, engine: Engine, period: Period, now: dt.datetime) -> MonthlyReview:
    """The whole review of `period` from the store (no API calls)."""
    with engine.connect() as connection:
        facts, latest = invoice_store.number_facts(connection)
        headers = invoice_store.headers_frame(connection)
        month_headers = headers[headers["period_start"] == period.first].reset_index(drop=True) if len(headers) else headers
        ids = list(month_headers["invoice_id"]) if len(month_headers) else []
        lines = invoice_store.lines_frame(connection, ids)
        issues = invoice_store.issues_frame(connection, ids)
        covered = invoice_store.calls_covered_from(connection)
        usage_ok = covered is not None and covered <= period.start
        usage = invoice_store.usage_by_number(connection, period.start, period.end) if usage_ok else None
        newest = readers.latest_complete_run(connection)
        closing_run = readers.latest_complete_run(connection, at=period.end - dt.timedelta(microseconds=1))
        agents = readers.agents_as_of(connection, newest.id) if newest else pd.DataFrame(columns=["agent_id", "name"])
        waste = (flag_store.waste_by_run(connection, [closing_run.id]) if closing_run
                 else pd.DataFrame(columns=["run_id", "currency", "flagged", "waste"]))
        realised = flag_store.realised_savings(connection)
    if len(realised):
        seen = pd.to_datetime(realised["released_seen_at"], utc=True)
        realised = realised[(seen >= period.start) & (seen < period.end)]
    note = "" if usage_ok else (
        f"calls are in the store only from {format_timestamp(covered)}: usage lines are not checked for {period}"
        if covered else "no calls in the store: usage lines are not checked")
    if len(month_headers):
        reconciliation = reconcile_invoices(period, month_headers, lines, facts, usage, note)
    else:
        reconciliation = reconcile_invoices(period, month_headers, lines, {}, None,
                                            f"Truedy lists no invoice for {period}")
    names = dict(zip(agents["agent_id"], agents["name"], strict=True)) if len(agents) else {}
    held = monthly.with_cost_at(latest, facts, period.end, names)
    moved = monthly.movement(latest, period)
    recurring = {label: monthly.recurring_by(held, key) for key, label in monthly.DIMENSIONS}
    recurring["Agent"] = monthly.top_rows(recurring["Agent"], TOP_AGENTS, "other agents")
    estimates = {name: (cost.amount, cost.currency) for name, cost in settings.carrier_costs.items()}
    focus = FocusExport(period, month_headers, lines, facts, monthly.number_tags(latest, names), estimates)
    return MonthlyReview(
        period=period, generated_at=now, movement=moved, recurring=recurring,
        recurring_total=totals_by_currency(held["cost_at"].tolist(), held["currency"].tolist()),
        estimates=monthly.estimated_carrier_cost(held, estimates),
        waste=totals_by_currency(waste["waste"], waste["currency"]) if len(waste) else [],
        waste_as_of=closing_run.as_of if closing_run else None,
        realised=totals_by_currency(realised["monthly_savings"], realised["currency"]) if len(realised) else [],
        realised_numbers=realised, months=monthly.month_rows(latest, facts, headers, period, held, moved),
        reconciliation=reconciliation, invoices=month_headers, invoice_issues=issues, focus=focus,
        newest_run=newest.as_of if newest else None)


def report_monthly(settings: Settings, engine: Engine, period: Period, clock: Clock, out_dir: Path | None = None,
                   fetch: bool = True, progress: Progress | None = None) -> MonthlyOutcome:
    """Sync the month's invoices (unless `fetch` is off), then write the review. The caller holds the lock."""
    now = clock()
    check_complete(period, now)
    with engine.connect() as connection:
        if readers.latest_complete_run(connection) is None:  # every billed number would look unknown
            raise StoreError("no complete sync run in the store: run `reconcile sync` first, then the review")
    synced = None
    if fetch:
        with make_client(settings) as client:
            synced = run_invoice_sync(client, engine, (period,), clock=clock, progress=progress or progress_for())
        log.info(synced.line())
    review = build_monthly(settings, engine, period, now)
    files = render_monthly(review, out_dir or default_out_dir(settings, period))
    return MonthlyOutcome(synced, review, files)


def run_monthly(settings: Settings, clock: Clock, engine: Engine | None = None, progress: Progress | None = None,
                transport: Transport | None = None, resend_unknown: bool = False) -> MonthlyOutcome:
    """The scheduled job: the review of the calendar month before the clock's (UTC), sent to finance once."""
    engine = engine or open_store(settings)
    outcome = report_monthly(settings, engine, previous_period(clock()), clock, progress=progress)
    send_review(settings, engine, outcome, transport, clock, resend_unknown)
    return outcome


def send_review(settings: Settings, engine: Engine, outcome: MonthlyOutcome, transport: Transport | None,
                clock: Clock, resend_unknown: bool = False) -> None:
    """Mail the review to `notify.finance_recipients`, once per month and recipient (the sent log says)."""
    recipients = list(settings.notify.finance_recipients)
    if not recipients:
        return
    kind = f"monthly:{outcome.review.period}"
    with engine.connect() as connection:
        run = readers.latest_complete_run(connection)
    if run is None:
        log.warning("no complete sync run in the store: the monthly review is not mailed")
        return
    content = render_review_mail(outcome.review, str(outcome.files.directory))

    def build() -> EmailMessage:
        return build_message(sender=settings.mail.from_address, to=recipients, subject=content.subject,
                             text=content.text, html=content.html, date=clock(),
                             message_id=message_id_for("monthly", str(outcome.review.period)),
                             attachments=[Attachment(content.filename, content.csv)])

    numbers = [str(n) for n in outcome.review.reconciliation.findings["number_id"] if n]
    delivery = deliver_once(engine, transport or transport_for(settings.mail), build, run_id=run.id, kind=kind,
                            envelopes={r: [r] for r in recipients}, number_ids=numbers, clock=clock,
                            resend_unknown=resend_unknown, once_per_run=False)
    outcome.sent, outcome.already_sent = list(delivery.sent), delivery.skipped
    outcome.unknown, outcome.failed = delivery.unknown, delivery.failed
    if delivery.failed:
        raise DeliveryError(f"the review was written but not mailed to {', '.join(sorted(delivery.failed))} "
                            f"({next(iter(delivery.failed.values()))}); run the job again to send only those")

