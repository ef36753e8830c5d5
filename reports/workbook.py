"""Workbooks for finance: review.xlsx beside monthly.html, flagged.xlsx beside flagged.csv.

A spreadsheet reads a CSV its own way (a phone number becomes a number, a label loses its
accents); a workbook says what each cell is. Here: phone numbers and every text are text
cells (never a formula, whatever a customer typed), money is a number with its
currency's format, dates are dates, the header row is frozen with a filter on it, and
columns are sized to their content.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from reconcile.analysis.monthly import MonthlyReview
from reconcile.reports.xlsx import Book, Sheet, money_format, serials


def write_review_xlsx(review: MonthlyReview, focus_billed: dict[str, Decimal], focus_rows: int, path: Path) -> None:
    """The monthly review as a workbook: the verdict, the figures per currency, the findings, FOCUS totals."""
    rec = review.reconciliation
    book = Book()
    verdict = Sheet(book, "Verdict", ["Month", "Verdict", "Findings", "Generated (UTC)"])
    verdict.row([str(review.period), review.headline, len(rec.findings), review.generated_at])
    kinds = sorted({kind for c in rec.checks for kind in c.other_by_type})
    figures = Sheet(book, "Figures", ["Currency", "Invoices", "Invoice total", "Number fees billed",
                                      "Number fees expected", "Usage billed (rated)", "Usage from calls (rated)",
                                      *[f"Other: {kind}" for kind in kinds], "Findings", "Difference"])
    for c in rec.checks:
        figures.row([c.currency, ", ".join(c.invoice_ids), c.invoice_total, c.billed_fees_amount,
                     c.expected_fees_amount, c.billed_usage, c.expected_usage if rec.usage_checked else None,
                     *[c.other_by_type.get(kind, Decimal(0)) for kind in kinds], c.findings, c.difference],
                    currency=c.currency, rated=(5, 6))
    findings = Sheet(book, "Findings", ["Issue", "Invoice", "Line item", "Number id", "Phone number", "Currency",
                                        "Expected", "Billed", "Difference", "Service period start",
                                        "Service period end", "Detail"])
    for f in rec.findings.to_dict("records"):
        rated = (6, 7, 8) if f["issue"] == "usage_mismatch" else ()
        findings.row([f["issue"], f["invoice_id"] or None, f["line_item_id"], f["number_id"], f["phone_number"],
                      f["currency"], f["expected_amount"], f["billed_amount"], f["difference"],
                      f["service_period_start"], f["service_period_end"], f["detail"]],
                     currency=f["currency"], rated=rated)
    focus = Sheet(book, "FOCUS summary", ["Currency", "BilledCost (all invoice lines)", "Rows in focus.csv"])
    for currency, amount in sorted(focus_billed.items()):
        focus.row([currency, amount, focus_rows], currency=currency)
    book.save(path, review.generated_at)


CHUNK_ROWS = 5_000
FLAGGED_HEADER = ["Number id", "Phone number", "Label", "Country", "Type", "Provider", "Managed by Truedy",
                  "Monthly cost", "Flag", "Reason", "Recommended action", "Monthly saving", "Saving basis",
                  "Inbound agent", "Outbound agent", "Purchased", "Last call", "Idle days", "First flagged"]


def write_flagged_xlsx(flagged: pd.DataFrame, agent_names: dict[str, str], path: Path, as_of: dt.datetime) -> None:
    """The flagged numbers as a workbook (the columns of flagged.csv, agents by name), read column by column."""
    book = Book()
    sheet = Sheet(book, "Flagged numbers", FLAGGED_HEADER)

    def column(name: str) -> list[Any]:
        if name not in flagged:
            return [None] * len(flagged)
        values = flagged[name]
        if pd.api.types.is_datetime64_any_dtype(values):
            return serials(values)
        if values.dtype == "str":  # text or NaN, its blank
            return [value if value.__class__ is str and value else None for value in values.tolist()]
        return [None if value is None or value is pd.NA or value is pd.NaT or value != value or value == "" else value
                for value in values.tolist()]

    currencies = column("currency")
    for code in sorted({c for c in currencies if c}):  # styles in one order, whatever rows come first
        book.money_style(money_format(code))
    managed = ["yes" if value is True else "no" for value in flagged["is_truedy_managed"].tolist()]
    agents = [_agents(column(f"{direction}_agent_id"), agent_names) for direction in ("inbound", "outbound")]
    columns = [column("number_id"), column("phone_number"), column("label"), column("country_code"),
               column("phone_number_type"), column("provider"), managed, column("monthly_cost"), column("flag"),
               column("reason"), column("recommended_action"), column("monthly_savings"), column("savings_basis"),
               *agents, column("purchased_at"), column("last_call_at"), column("idle_days"), column("first_flagged_at")]
    for start in range(0, len(flagged), CHUNK_ROWS):  # rendered a slice at a time: never every cell at once
        end = start + CHUNK_ROWS
        sheet.columns([values[start:end] for values in columns], currencies=currencies[start:end])
    book.save(path, as_of)


def _agents(agent_ids: list[Any], names: dict[str, str]) -> list[str | None]:
    """Each agent by its name (its id when it has none), each distinct agent looked up once."""
    shown = {a: names.get(a, a) if isinstance(a, str) and a else None for a in set(agent_ids)}
    return list(map(shown.__getitem__, agent_ids))
