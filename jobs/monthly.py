"""The monthly job: sync the month's invoices, then the finance review of the month, rendered and mailed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import Engine

from reconcile.analysis.monthly import MonthlyReview
from reconcile.bulk import bulk_work
from reconcile.clock import Clock
from reconcile.config import Settings
from reconcile.delivery import UNKNOWN_HINT, deliver_once
from reconcile.errors import DeliveryError, StoreError
from reconcile.invoice_sync import InvoiceSyncSummary, run_invoice_sync
from reconcile.jobs.runtime import make_client
from reconcile.mail import Attachment, Transport, build_message, message_id_for, transport_for
from reconcile.period import Period
from reconcile.progress import Progress, progress_for
from reconcile.reports.monthly import MonthlyFiles, render_monthly
from reconcile.reports.review_mail import render_review_mail
from reconcile.review.monthly import (
    check_complete,
    focus_export,
    previous_period,
    read_month,
    review_month,
)
from reconcile.store import readers

log = logging.getLogger("reconcile.monthly")


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
        review = (f"monthly review of {self.review.period}: {self.review.headline}; written to "
                  f"{self.files.directory}{mailed}")
        return f"{self.invoices.line()}; {review}" if self.invoices else review

    def counts(self) -> dict[str, int]:
        return {"findings": len(self.review.reconciliation.findings), "invoices": len(self.review.invoices),
                "sent": len(self.sent), "failed": len(self.failed)}

    def raise_for_failures(self) -> None:
        """A review that was not mailed raised already (see `send_review`)."""


def default_out_dir(settings: Settings, period: Period) -> Path:
    return settings.reports_dir / f"monthly-{period}"


@bulk_work()
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
    month = read_month(engine, period)
    focus = focus_export(settings, month)
    review, files = render_monthly(focus, lambda: review_month(engine, month, now, focus),
                                   out_dir or default_out_dir(settings, period))
    return MonthlyOutcome(synced, review, files)


def run_monthly(settings: Settings, engine: Engine, clock: Clock, progress: Progress | None = None,
                transport: Transport | None = None, resend_unknown: bool = False) -> MonthlyOutcome:
    """The scheduled job: the review of the calendar month before the clock's (UTC), sent to finance once."""
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
    files = outcome.files
    base = settings.reports_base_url.rstrip("/")
    content = render_review_mail(outcome.review, f"{base}/{files.directory.name}/{files.html.name}" if base else "")
    attachments = [Attachment.html_page(f"monthly-{outcome.review.period}.html", files.html.read_bytes()),
                   Attachment.workbook(f"review-{outcome.review.period}.xlsx", files.review_xlsx.read_bytes()),
                   Attachment(content.filename, content.csv)]

    def build() -> EmailMessage:
        return build_message(sender=settings.mail.from_address, to=recipients, subject=content.subject,
                             text=content.text, html=content.html, date=clock(),
                             message_id=message_id_for("monthly", str(outcome.review.period)),
                             attachments=attachments, reply_to=settings.notify.contact)

    numbers = [str(n) for n in outcome.review.reconciliation.findings["number_id"] if n]
    delivery = deliver_once(engine, transport or transport_for(settings.mail), build, run_id=run.id, kind=kind,
                            envelopes={r: [r] for r in recipients}, number_ids=numbers, clock=clock,
                            resend_unknown=resend_unknown, once_per_run=False)
    outcome.sent, outcome.already_sent = list(delivery.sent), delivery.skipped
    outcome.unknown, outcome.failed = delivery.unknown, delivery.failed
    if delivery.failed:
        raise DeliveryError(f"the review was written but not mailed to {', '.join(sorted(delivery.failed))} "
                            f"({next(iter(delivery.failed.values()))}); run the job again to send only those")

