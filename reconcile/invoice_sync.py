"""Invoices from the Truedy API into the store, for the months under review.

Reads first (every invoice header; the line items of the reviewed months' invoices
that are new or still drafts; the numbers those lines name that the store has never
seen), then one transaction writes it all. Rerunning on the same upstream data
changes nothing and reads no line item twice. The caller holds the run lock.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from reconcile.bulk import bulk_work
from reconcile.clock import Clock
from reconcile.errors import StoreError
from reconcile.period import Period
from reconcile.progress import NullProgress, Progress
from reconcile.store import invoices as store
from reconcile.store.database import first_line
from reconcile.truedy.client import TruedyClient
from reconcile.truedy.records import DataIssue, LineItem, PhoneNumber

log = logging.getLogger("reconcile.invoices")


@dataclass
class InvoiceSyncSummary:
    periods: tuple[Period, ...]
    invoices_listed: int = 0
    invoices_new: int = 0
    invoices_updated: int = 0
    invoices_read: int = 0
    lines_read: int = 0
    numbers_looked_up: int = 0
    issues: int = 0
    duration_s: float = 0.0

    def line(self) -> str:
        months = ", ".join(str(p) for p in self.periods)
        return (f"invoices synced for {months}: {self.invoices_listed} listed ({self.invoices_new} new, "
                f"{self.invoices_updated} updated), {self.invoices_read} read line by line "
                f"({self.lines_read:,} lines), {self.numbers_looked_up} unknown numbers looked up, "
                f"{self.issues} new invoice issues, {self.duration_s:.1f} s")


@bulk_work()
def run_invoice_sync(client: TruedyClient, engine: Engine, periods: tuple[Period, ...], *, clock: Clock,
                     progress: Progress | None = None) -> InvoiceSyncSummary:
    progress = progress or NullProgress()
    started = time.monotonic()
    summary = InvoiceSyncSummary(periods)
    now = clock()
    try:
        with engine.connect() as connection:
            stored = store.stored_headers(connection)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the stored invoices: {first_line(exc)}") from None

    progress.phase("invoices")
    listing = client.list_invoices()
    summary.invoices_listed = len(listing.records)
    issues = [store.InvoiceIssue(i.record_id, i.record_id, i.field, i.reason) for i in listing.issues]
    plan = store.plan_headers(stored, listing.records)
    issues += plan.issues
    firsts = {p.first for p in periods}
    changed = {issue.invoice_id for issue in plan.issues}  # issued, then changed: its stored lines stand
    to_read = [i for i in listing.records
               if i.period_start in firsts and i.id not in changed and store.needs_lines(stored.get(i.id), i)]

    lines: dict[str, list[LineItem]] = {}
    progress.phase("invoice lines", total=len(to_read))
    for invoice in to_read:
        listed = client.list_line_items(invoice.id)
        issues += [store.InvoiceIssue(invoice.id, i.record_id, i.field, i.reason) for i in listed.issues]
        lines[invoice.id] = listed.records
        progress.advance()
    billed = {line.number_id for items in lines.values() for line in items if line.number_id}
    if billed:
        try:
            with engine.connect() as connection:
                billed -= store.known_number_ids(connection)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the stored numbers: {first_line(exc)}") from None
    unknown = sorted(billed)
    looked_up: dict[str, PhoneNumber | None] = {}
    if unknown:
        progress.phase("numbers billed but never listed", total=len(unknown))
        for number_id, outcome in zip(unknown, client.get_numbers(unknown), strict=True):
            if isinstance(outcome, DataIssue):
                issues.append(store.InvoiceIssue("", number_id, outcome.field, outcome.reason))
            else:
                looked_up[number_id] = outcome
            progress.advance()
    progress.finish()

    try:
        with engine.begin() as connection:
            store.write_headers(connection, plan, now)
            by_id = {i.id: i for i in listing.records}
            for invoice_id, items in lines.items():
                store.replace_lines(connection, by_id[invoice_id], items, now)
            store.record_looked_up(connection, looked_up, now)
            summary.issues = store.record_issues(connection, issues, now)
    except SQLAlchemyError as exc:
        raise StoreError(f"database error while writing invoices: {first_line(exc)}; nothing was committed") from None
    summary.invoices_new = len(plan.insert)
    summary.invoices_updated = len(plan.update)
    summary.invoices_read = len(lines)
    summary.lines_read = sum(len(items) for items in lines.values())
    summary.numbers_looked_up = len(looked_up)
    summary.duration_s = time.monotonic() - started
    return summary
