"""The monthly finance review of one calendar month, from the store (no API calls)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine

from reconcile.analysis import monthly
from reconcile.analysis.agents import by_agent
from reconcile.analysis.billing import NumberFacts
from reconcile.analysis.focus import FocusExport
from reconcile.analysis.invoices import Usage, reconcile_invoices
from reconcile.analysis.monthly import MonthlyReview
from reconcile.analysis.nightly import totals_by_currency
from reconcile.clock import format_timestamp
from reconcile.config import Settings
from reconcile.errors import ConfigError
from reconcile.money import format_money
from reconcile.period import Period
from reconcile.store import flags as flag_store
from reconcile.store import invoices as invoice_store
from reconcile.store import readers
from reconcile.store import releases as plan_store
from reconcile.store.database import read_alongside
from reconcile.store.readers import SyncRun

TOP_AGENTS = 25


def previous_period(now: dt.datetime) -> Period:
    """The calendar month (UTC) before the one `now` falls in: the month a scheduled review covers."""
    return Period.containing(now.astimezone(dt.UTC)).shifted(-1)


def check_complete(period: Period, now: dt.datetime) -> None:
    if period.end > now:
        raise ConfigError(f"--period {period}: the month is not over yet (it ends {format_timestamp(period.end)}); "
                          "review a complete month")


@dataclass
class MonthInputs:
    """What the month's FOCUS rows and its review start from: the invoices and the numbers."""

    period: Period
    facts: dict[str, NumberFacts]
    latest: pd.DataFrame
    headers: pd.DataFrame
    month_headers: pd.DataFrame
    lines: pd.DataFrame
    newest: SyncRun | None
    names: dict[str, str]
    covered: dt.datetime | None   # from when every call is in the store
    usage: Usage | None           # the month's calls per number and currency (None when not all are stored)


def read_month(engine: Engine, period: Period) -> MonthInputs:
    """The store's invoices of `period` and its numbers' facts (the rest is read by `review_month`)."""
    with engine.connect() as connection:
        headers = invoice_store.headers_frame(connection)
    month_headers = headers[headers["period_start"] == period.first].reset_index(drop=True) if len(headers) else headers
    ids = _invoice_ids(month_headers)

    def lines_and_usage(connection: Connection) -> tuple[pd.DataFrame, dt.datetime | None, list[Any] | None]:
        covered = invoice_store.calls_covered_from(connection)
        usage = (invoice_store.usage_rows(connection, period.start, period.end)
                 if covered is not None and covered <= period.start else None)
        return invoice_store.lines_frame(connection, ids), covered, usage

    # the lines and the calls' usage beside the numbers' facts: two reads, two cores
    with read_alongside(engine, lines_and_usage, "reading the invoice lines and the month's calls") as reading:
        with engine.connect() as connection:
            facts, latest = invoice_store.number_facts(connection)
            newest = readers.latest_complete_run(connection)
            agents = (readers.agents_as_of(connection, newest.id) if newest
                      else pd.DataFrame(columns=["agent_id", "name"]))
        lines, covered, usage = reading.result()
    return MonthInputs(period, facts, latest, headers, month_headers, lines, newest, by_agent(agents, "name"),
                       covered, None if usage is None else invoice_store.usage_of(usage))


def focus_export(settings: Settings, month: MonthInputs) -> FocusExport:
    """The month's FOCUS rows (written while the rest of the review is made: see `reports.monthly`)."""
    estimates = {name: (cost.amount, cost.currency) for name, cost in settings.carrier_costs.items()}
    return FocusExport(month.period, month.month_headers, month.lines, month.facts,
                       lambda: monthly.number_tags(month.latest, month.names), estimates, settings.billing_account)


def review_month(engine: Engine, month: MonthInputs, now: dt.datetime, focus: FocusExport) -> MonthlyReview:
    """The review of a month (`read_month`, then the usage, flags and release plans it reads here)."""
    period, lines, facts, latest = month.period, month.lines, month.facts, month.latest
    covered, usage = month.covered, month.usage
    with engine.connect() as connection:
        issues = invoice_store.issues_frame(connection, _invoice_ids(month.month_headers))
        closing_run = readers.latest_complete_run(connection, at=period.end - dt.timedelta(microseconds=1))
        waste = (flag_store.waste_by_run(connection, [closing_run.id]) if closing_run
                 else pd.DataFrame(columns=["run_id", "currency", "flagged", "waste"]))
        realised = flag_store.realised_savings(connection)
    if len(realised):
        seen = pd.to_datetime(realised["released_seen_at"], utc=True)
        realised = realised[(seen >= period.start) & (seen < period.end)]
    note = "" if usage is not None else (
        f"calls are in the store only from {format_timestamp(covered)}: usage lines are not checked for {period}"
        if covered else "no calls in the store: usage lines are not checked")
    ever = plan_store.released_between(engine, dt.datetime(1970, 1, 1, tzinfo=dt.UTC), period.end)
    reconciliation = reconcile_invoices(period, month.month_headers, lines, facts, usage, note,
                                        {item.number_id: item.plan_id for item in ever})
    released = [item for item in ever if item.released_at is not None and item.released_at >= period.start]
    plan_rows = [{"plan_id": i.plan_id, "number_id": i.number_id, "phone_number": i.phone_number,
                  "released_at": i.released_at, "monthly_cost": i.monthly_cost, "currency": i.currency,
                  "last_fee": _last_fee(lines, i.number_id)} for i in released]
    prices = monthly.Prices.of(latest, facts)  # each number's price, for the month and the five before it
    held = monthly.with_cost_at(latest, prices, period.end, month.names)
    moved = monthly.movement(latest, period)
    recurring = {label: monthly.recurring_by(held, key) for key, label in monthly.DIMENSIONS}
    recurring["Agent"] = monthly.top_rows(recurring["Agent"], TOP_AGENTS, "other agents")
    return MonthlyReview(
        period=period, generated_at=now, movement=moved, recurring=recurring,
        recurring_total=totals_by_currency(held["cost_at"].tolist(), held["currency"].tolist()),
        estimates=monthly.estimated_carrier_cost(held, focus.estimates),
        waste=totals_by_currency(waste["waste"], waste["currency"]) if len(waste) else [],
        waste_as_of=closing_run.as_of if closing_run else None,
        realised=totals_by_currency(realised["monthly_savings"], realised["currency"]) if len(realised) else [],
        realised_numbers=realised, months=monthly.month_rows(latest, prices, month.headers, period, held, moved),
        reconciliation=reconciliation, invoices=month.month_headers, invoice_issues=issues, focus=focus,
        newest_run=month.newest.as_of if month.newest else None, plan_releases=plan_rows,
        plan_realised=totals_by_currency([r["monthly_cost"] for r in plan_rows], [r["currency"] for r in plan_rows])
        if plan_rows else [])


def _invoice_ids(month_headers: pd.DataFrame) -> list[str]:
    return list(month_headers["invoice_id"]) if len(month_headers) else []


def _last_fee(lines: pd.DataFrame, number_id: str) -> str:
    """The last monthly fee the month's invoices bill for a number: "1.15 USD for 2026-10-12 to 2026-11-12"."""
    if not len(lines):
        return ""
    fees = lines[(lines["number_id"] == number_id) & (lines["type"] == "number_monthly_fee")]
    if not len(fees):
        return ""
    last = fees.sort_values("service_period_start").iloc[-1]
    return (f"{format_money(last['amount'], last['currency'])} for {last['service_period_start']} to "
            f"{last['service_period_end']}")
