"""Invoices in the store: planning header changes (pure), writing them, reading them back.

Headers are kept for every invoice the API lists (cheap, and the month-over-month view
needs their totals); line items only for the periods reviewed. A draft invoice may
change and is updated; an issued one is immutable, so a change to its content is
recorded as an invoice issue and the stored copy is kept (status moves such as
open -> paid are normal and applied).
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Connection, delete, false, func, insert, select, update

from reconcile.analysis.billing import NumberFacts, PriceObservation, merge_observations
from reconcile.analysis.invoices import CallUsage, Usage
from reconcile.clock import format_timestamp, parse_timestamp
from reconcile.store.readers import sort_frame, table_frame
from reconcile.store.schema import (
    calls,
    invoice_issues,
    invoice_lines,
    invoice_numbers,
    invoices,
    number_versions,
    sync_runs,
)
from reconcile.store.types import UTCDateTime, money_sum, money_total
from reconcile.store.writer import CALLS_COVERED_FROM, CHUNK, get_state
from reconcile.truedy.records import Invoice, LineItem, PhoneNumber

CONTENT = ("number", "period_start", "period_end", "issued_at", "currency", "total")


@dataclass(frozen=True)
class InvoiceIssue:
    invoice_id: str
    record_id: str
    field: str
    reason: str


@dataclass
class HeaderPlan:
    insert: list[Invoice] = field(default_factory=list)
    update: list[Invoice] = field(default_factory=list)        # drafts and status moves
    issues: list[InvoiceIssue] = field(default_factory=list)    # issued invoices that changed


def plan_headers(stored: dict[str, dict[str, Any]], listed: Iterable[Invoice]) -> HeaderPlan:
    """What to write for the listed invoice headers, given the stored ones."""
    plan = HeaderPlan()
    for invoice in listed:
        old = stored.get(invoice.id)
        if old is None:
            plan.insert.append(invoice)
            continue
        changed = [name for name in CONTENT if old[name] != getattr(invoice, name)]
        if old["status"] == "draft" or old["issued_at"] is None:
            if changed or old["status"] != invoice.status:
                plan.update.append(invoice)
        elif changed:
            described = "; ".join(f"{name} {_text(old[name])} -> {_text(getattr(invoice, name))}" for name in changed)
            plan.issues.append(InvoiceIssue(invoice.id, invoice.id, ",".join(changed),
                                            f"issued invoice changed after issue ({described}); the stored copy is kept"))
            if old["status"] != invoice.status:
                plan.update.append(_with_content(invoice, old))
        elif old["status"] != invoice.status:
            plan.update.append(invoice)
    return plan


def _with_content(invoice: Invoice, old: dict[str, Any]) -> Invoice:
    return Invoice(invoice.id, old["number"], old["period_start"], old["period_end"], old["issued_at"],
                   invoice.status, old["currency"], old["total"])


def _text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    return "null" if value is None else str(value)


def needs_lines(stored: dict[str, Any] | None, invoice: Invoice) -> bool:
    """Read an invoice's lines when never read, or while it was (or is) a draft."""
    return (stored is None or stored["lines_synced_at"] is None or stored["lines_status"] == "draft"
            or invoice.status == "draft")


# -- writes ------------------------------------------------------------------------------

def stored_headers(connection: Connection) -> dict[str, dict[str, Any]]:
    return {row.invoice_id: dict(row._mapping) for row in connection.execute(select(invoices))}


def _header_values(invoice: Invoice) -> dict[str, Any]:
    return {"number": invoice.number, "period_start": invoice.period_start, "period_end": invoice.period_end,
            "issued_at": invoice.issued_at, "status": invoice.status, "currency": invoice.currency,
            "total": invoice.total}


def write_headers(connection: Connection, plan: HeaderPlan, now: dt.datetime) -> None:
    if plan.insert:
        connection.execute(insert(invoices), [
            {"invoice_id": i.id, **_header_values(i), "first_seen_at": now, "updated_at": now} for i in plan.insert])
    for invoice in plan.update:
        connection.execute(update(invoices).where(invoices.c.invoice_id == invoice.id)
                           .values(**_header_values(invoice), updated_at=now))


def replace_lines(connection: Connection, invoice: Invoice, lines: list[LineItem], now: dt.datetime) -> None:
    connection.execute(delete(invoice_lines).where(invoice_lines.c.invoice_id == invoice.id))
    rows = [{
        "invoice_id": invoice.id, "line_item_id": line.id, "position": position, "type": line.type,
        "number_id": line.number_id, "phone_number": line.phone_number, "description": line.description,
        "quantity": line.quantity, "unit_amount": line.unit_amount, "amount": line.amount,
        "currency": line.currency, "service_period_start": line.service_period_start,
        "service_period_end": line.service_period_end,
    } for position, line in enumerate(lines)]
    for start in range(0, len(rows), 5000):
        connection.execute(insert(invoice_lines), rows[start:start + 5000])
    connection.execute(update(invoices).where(invoices.c.invoice_id == invoice.id).values(
        lines_synced_at=now, lines_status=invoice.status, line_count=len(rows)))


def record_issues(connection: Connection, issues: Iterable[InvoiceIssue], now: dt.datetime) -> int:
    """Store issues not already stored (the same issue found again is not repeated)."""
    known = {(r.invoice_id, r.record_id, r.field, r.reason) for r in connection.execute(
        select(invoice_issues.c.invoice_id, invoice_issues.c.record_id, invoice_issues.c.field,
               invoice_issues.c.reason))}
    fresh = list(dict.fromkeys(i for i in issues if (i.invoice_id, i.record_id, i.field, i.reason) not in known))
    if fresh:
        connection.execute(insert(invoice_issues), [
            {"invoice_id": i.invoice_id, "record_id": i.record_id, "field": i.field, "reason": i.reason,
             "found_at": now} for i in fresh])
    return len(fresh)


def record_looked_up(connection: Connection, found: dict[str, PhoneNumber | None], now: dt.datetime) -> None:
    rows = []
    for number_id, number in found.items():
        row: dict[str, Any] = {"number_id": number_id, "found": number is not None, "looked_up_at": now,
                               "phone_number": None, "provider": None, "is_truedy_managed": None,
                               "upfront_cost": None, "monthly_cost": None, "currency": None,
                               "purchased_at": None, "released_at": None}
        if number is not None:
            cost = number.cost_information
            row.update(phone_number=number.phone_number, provider=number.provider,
                       is_truedy_managed=number.is_truedy_managed,
                       upfront_cost=cost.upfront_cost if cost else None, monthly_cost=cost.monthly_cost if cost else None,
                       currency=cost.currency if cost else None,
                       purchased_at=number.purchased_at, released_at=number.released_at)
        rows.append(row)
    if rows:
        connection.execute(delete(invoice_numbers).where(invoice_numbers.c.number_id.in_(list(found))))
        connection.execute(insert(invoice_numbers), rows)


# -- reads -------------------------------------------------------------------------------

def known_number_ids(connection: Connection) -> set[str]:
    ids = set(connection.execute(select(number_versions.c.number_id).distinct()).scalars())
    return ids | set(connection.execute(select(invoice_numbers.c.number_id)).scalars())


def headers_frame(connection: Connection) -> pd.DataFrame:
    result = connection.execute(select(invoices).order_by(invoices.c.period_start, invoices.c.currency))
    return pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))


def lines_frame(connection: Connection, invoice_ids: list[str]) -> pd.DataFrame:
    """Line items of some invoices in API order; money as Decimal, Python objects throughout
    (the reconciliation walks 140,000 of them row by row)."""
    parts = [table_frame(connection, invoice_lines, invoice_lines.c.invoice_id.in_(invoice_ids[start:start + CHUNK]))
             for start in range(0, len(invoice_ids), CHUNK)]
    frame = (pd.concat(parts, ignore_index=True) if parts else table_frame(connection, invoice_lines, false()))
    frame = frame.astype(object)
    for name in ("service_period_start", "service_period_end"):
        frame[name] = pd.Series([_date(v) for v in frame[name].tolist()], index=frame.index, dtype=object)
    for name in ("number_id", "phone_number"):  # None stays None (not NaN): the analysis keys on it
        frame[name] = pd.Series([v if isinstance(v, str) else None for v in frame[name]], index=frame.index, dtype=object)
    # a month's lines repeat a few of each of these: one text object per value (less memory, and the
    # forked reader that reads them pickles each text once: half its hand-over)
    for name in ("invoice_id", "type", "currency"):
        shared: dict[Any, Any] = {}
        frame[name] = pd.Series([shared.setdefault(v, v) for v in frame[name].tolist()], index=frame.index, dtype=object)
    return sort_frame(frame, ["invoice_id", "position"])


@functools.cache
def _date(value: Any) -> dt.date:
    """A stored date as one shared object per distinct day (a month's lines hold few)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def issues_frame(connection: Connection, invoice_ids: list[str]) -> pd.DataFrame:
    result = connection.execute(select(invoice_issues).where(invoice_issues.c.invoice_id.in_(invoice_ids))
                                .order_by(invoice_issues.c.id))
    return pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))


def calls_covered_from(connection: Connection) -> dt.datetime | None:
    """From when every call is in the store: the first sync's backfill start, else the oldest call."""
    value = get_state(connection, CALLS_COVERED_FROM)
    if value:
        return parse_timestamp(value)
    return connection.execute(select(func.min(calls.c.started_at, type_=UTCDateTime))).scalar()


def usage_rows(connection: Connection, start: dt.datetime, end: dt.datetime) -> list[tuple[Any, ...]]:
    """Per (number_id or None for web calls, currency): the usage of the calls started in [start, end), as the
    database sums it (money as whole units and nano remainders; `usage_of` makes the Usage): plain values,
    cheap to hand from a forked reader to its parent (a Decimal pickles as its text)."""
    minutes = (calls.c.duration_seconds + 59) // 60  # whole minutes started: integer division on both engines
    query = (select(calls.c.number_id, calls.c.cost_currency,
                    *money_sum(calls.c.cost_amount, "cost"), func.count(),
                    func.sum(minutes))
             .where(calls.c.started_at >= start, calls.c.started_at < end)
             .group_by(calls.c.number_id, calls.c.cost_currency))
    return [tuple(row) for row in connection.execute(query)]


def usage_of(rows: list[tuple[Any, ...]]) -> Usage:
    """The usage per (number_id, currency) of `usage_rows`."""
    return {(row[0], row[1]): CallUsage(money_total(row[2], row[3]) or Decimal(0), int(row[4]), int(row[5] or 0))
            for row in rows}


def number_facts(connection: Connection) -> tuple[dict[str, NumberFacts], pd.DataFrame]:
    """Billing facts per number from the version history (plus numbers looked up for invoices),
    and the latest version of each stored number as a frame (for the inventory views)."""
    runs = [(r.id, r.as_of) for r in connection.execute(
        select(sync_runs.c.id, sync_runs.c.as_of).where(sync_runs.c.status == "complete").order_by(sync_runs.c.id))]
    run_ids = [r[0] for r in runs]
    as_of = dict(runs)

    def last_seen(valid_to_run: int | None) -> dt.datetime | None:
        if valid_to_run is None:
            return None
        position = bisect.bisect_left(run_ids, valid_to_run)
        return runs[position - 1][1] if position else None

    complete = select(sync_runs.c.id).where(sync_runs.c.status == "complete")
    frame = table_frame(connection, number_versions, number_versions.c.valid_from_run.in_(complete),
                        number_versions.c.number_id, number_versions.c.valid_from_run,
                        skip=("row_hash", "source_hash", "features", "status", "inbound_assigned_at",
                              "outbound_assigned_at"))  # what no monthly view shows
    observations: dict[str, list[PriceObservation]] = {}
    first_seen = map(as_of.__getitem__, frame["valid_from_run"].astype("int64").tolist())
    for number_id, cost, seen, closed in zip(frame["number_id"].tolist(), frame["monthly_cost"].tolist(),
                                             first_seen, frame["valid_to_run"].tolist(), strict=True):
        if cost is not None:
            seen_last = None if closed is None or closed != closed else last_seen(int(closed))  # NaN: still open
            found = observations.get(number_id)
            if found is None:
                observations[number_id] = [PriceObservation(seen, seen_last, cost)]
            else:
                found.append(PriceObservation(seen, seen_last, cost))
    latest = frame.drop_duplicates("number_id", keep="last").reset_index(drop=True)
    facts = {}
    released = [None if gone else when for when, gone in zip(  # NaT as None, converted by pandas
        latest["released_at"].dt.to_pydatetime().tolist(), latest["released_at"].isna().tolist(), strict=True)]
    for number_id, phone, provider, managed, currency, upfront, bought, gone in zip(
            latest["number_id"].tolist(), latest["phone_number"].tolist(), latest["provider"].tolist(),
            latest["is_truedy_managed"].tolist(), latest["currency"].tolist(), latest["upfront_cost"].tolist(),
            latest["purchased_at"].dt.to_pydatetime().tolist(), released, strict=True):
        facts[number_id] = NumberFacts(number_id, phone, provider, bool(managed), currency if isinstance(currency, str)
                                       else None, upfront, bought, gone,
                                       merge_observations(observations.get(number_id, [])))
    for row in connection.execute(select(invoice_numbers).where(invoice_numbers.c.found.is_(True))):
        if row.number_id in facts or row.purchased_at is None:
            continue
        prices = (PriceObservation(row.looked_up_at, None, row.monthly_cost),) if row.monthly_cost is not None else ()
        facts[row.number_id] = NumberFacts(row.number_id, row.phone_number, row.provider or "",
                                           bool(row.is_truedy_managed), row.currency, row.upfront_cost,
                                           row.purchased_at, row.released_at, prices)
    return facts, latest

