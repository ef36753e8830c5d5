"""Workbooks for finance: review.xlsx beside monthly.html, flagged.xlsx beside flagged.csv.

A spreadsheet reads a CSV its own way (a phone number becomes a number, a label loses its
accents); a workbook says what each cell is. Here: phone numbers and every text are text
cells (never a formula, whatever a customer typed), money is a number with its
currency's format, dates are dates, the header row is frozen with a filter on it, and
columns are sized to their content.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from reconcile.analysis.monthly import MonthlyReview
from reconcile.money import minor_digits

MAX_WIDTH = 60


def money_format(currency: str, digits: int | None = None) -> str:
    """An Excel number format for an amount in `currency`: "#,##0.00 "USD"" (the code, quoted)."""
    places = minor_digits(currency) if digits is None else digits
    return f'#,##0{"." + "0" * places if places else ""} "{currency}"'


class Sheet:
    """One worksheet: rows are collected, then written in one pass by a write-only (streaming) workbook,
    with typed cells, a frozen header with a filter, and columns sized to their content."""

    def __init__(self, book: Workbook, title: str, header: Sequence[str]) -> None:
        self.book, self.title, self.header = book, title, list(header)
        self.widths = [len(name) for name in header]
        self.rows: list[tuple[list[Any], str | None, Sequence[int]]] = []

    def row(self, values: Iterable[Any], currency: str | None = None, rated: Sequence[int] = ()) -> None:
        """Add a row: Decimals are money in `currency` (the columns in `rated` at 4 places), str is text."""
        cells = list(values)
        self.rows.append((cells, currency, rated))
        for index, value in enumerate(cells):
            self.widths[index] = max(self.widths[index], min(MAX_WIDTH, len(_text(value)) + 2))

    def finish(self) -> None:
        ws = self.book.create_sheet(self.title)
        for index, width in enumerate(self.widths, start=1):
            ws.column_dimensions[get_column_letter(index)].width = max(8, width + 2)
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = f"A1:{get_column_letter(len(self.header))}{len(self.rows) + 1}"
        bold = Font(bold=True)
        head = []
        for name in self.header:
            cell = WriteOnlyCell(ws, value=name)
            cell.font = bold
            head.append(cell)
        ws.append(head)
        for values, currency, rated in self.rows:
            ws.append([self._cell(ws, index, value, currency, rated) for index, value in enumerate(values)])

    @staticmethod
    def _cell(ws: Any, index: int, value: Any, currency: str | None, rated: Sequence[int]) -> Cell:
        cell = WriteOnlyCell(ws, value=_plain(value))
        if isinstance(value, str):
            cell.data_type = "s"  # never a formula, even for "=HYPERLINK(...)" typed by a customer
            cell.number_format = "@"
        elif isinstance(value, Decimal) and currency:
            cell.number_format = money_format(currency, 4 if index in rated else None)
        elif isinstance(value, dt.datetime):
            cell.number_format = "yyyy-mm-dd hh:mm"
        elif isinstance(value, dt.date):
            cell.number_format = "yyyy-mm-dd"
        return cell


def _plain(value: Any) -> Any:
    """A value openpyxl writes as it is: aware times become naive UTC (Excel has no zones)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _text(value: Any) -> str:
    """About what the cell shows, for its column's width."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:,f}"
    if isinstance(value, dt.datetime):
        return "2026-01-01 00:00"
    return str(value)


def _save(book: Workbook, path: Path, when: dt.datetime) -> None:
    """Save with `when` as the workbook's times and every zip entry's, so the same review gives the same bytes
    (a report set is compared whole; openpyxl would stamp the wall clock)."""
    stamp = when.astimezone(dt.UTC).replace(tzinfo=None, microsecond=0)
    book.properties.created = book.properties.modified = stamp
    buffer = io.BytesIO()
    book.save(buffer)
    iso = stamp.isoformat() + "Z"
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", lambda m: m.group(1) + iso.encode(), data)
            entry = zipfile.ZipInfo(item.filename, date_time=stamp.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(entry, data)


def _book() -> Workbook:
    return Workbook(write_only=True)  # streaming: 100,000 rows in seconds, not minutes


def write_review_xlsx(review: MonthlyReview, focus_billed: dict[str, Decimal], focus_rows: int, path: Path) -> None:
    """The monthly review as a workbook: the verdict, the figures per currency, the findings, FOCUS totals."""
    rec = review.reconciliation
    book = _book()
    verdict = Sheet(book, "Verdict", ["Month", "Verdict", "Findings", "Generated (UTC)"])
    verdict.row([str(review.period), review.headline, len(rec.findings), review.generated_at])
    verdict.finish()
    kinds = sorted({kind for c in rec.checks for kind in c.other_by_type})
    figures = Sheet(book, "Figures", ["Currency", "Invoices", "Invoice total", "Number fees billed",
                                      "Number fees expected", "Usage billed (rated)", "Usage from calls (rated)",
                                      *[f"Other: {kind}" for kind in kinds], "Findings", "Difference"])
    for c in rec.checks:
        figures.row([c.currency, ", ".join(c.invoice_ids), c.invoice_total, c.billed_fees_amount,
                     c.expected_fees_amount, c.billed_usage, c.expected_usage if rec.usage_checked else None,
                     *[c.other_by_type.get(kind, Decimal(0)) for kind in kinds], c.findings, c.difference],
                    currency=c.currency, rated=(5, 6))
    figures.finish()
    findings = Sheet(book, "Findings", ["Issue", "Invoice", "Line item", "Number id", "Phone number", "Currency",
                                        "Expected", "Billed", "Difference", "Service period start",
                                        "Service period end", "Detail"])
    for f in rec.findings.to_dict("records"):
        rated = (6, 7, 8) if f["issue"] == "usage_mismatch" else ()
        findings.row([f["issue"], f["invoice_id"] or None, f["line_item_id"], f["number_id"], f["phone_number"],
                      f["currency"], f["expected_amount"], f["billed_amount"], f["difference"],
                      f["service_period_start"], f["service_period_end"], f["detail"]],
                     currency=f["currency"], rated=rated)
    findings.finish()
    focus = Sheet(book, "FOCUS summary", ["Currency", "BilledCost (all invoice lines)", "Rows in focus.csv"])
    for currency, amount in sorted(focus_billed.items()):
        focus.row([currency, amount, focus_rows], currency=currency)
    focus.finish()
    _save(book, path, review.generated_at)


FLAGGED_HEADER = ["Number id", "Phone number", "Label", "Country", "Type", "Provider", "Managed by Truedy",
                  "Monthly cost", "Flag", "Reason", "Recommended action", "Monthly saving", "Saving basis",
                  "Inbound agent", "Outbound agent", "Purchased", "Last call", "Idle days", "First flagged"]


def write_flagged_xlsx(flagged: Iterable[dict[str, Any]], agent_names: dict[str, str], path: Path,
                       as_of: dt.datetime) -> None:
    """The flagged numbers as a workbook (the columns of flagged.csv, agents by name)."""
    book = _book()
    sheet = Sheet(book, "Flagged numbers", FLAGGED_HEADER)
    for row in flagged:
        currency = row.get("currency") or None
        sheet.row([row["number_id"], row["phone_number"], row.get("label") or None, row["country_code"],
                   row["phone_number_type"], row["provider"], "yes" if row["is_truedy_managed"] else "no",
                   row.get("monthly_cost"), row["flag"], row["reason"], row["recommended_action"],
                   row.get("monthly_savings"), row.get("savings_basis"),
                   _agent(row.get("inbound_agent_id"), agent_names), _agent(row.get("outbound_agent_id"), agent_names),
                   row.get("purchased_at"), row.get("last_call_at"), row.get("idle_days"), row.get("first_flagged_at")],
                  currency=currency)
    sheet.finish()
    _save(book, path, as_of)


def _agent(agent_id: Any, names: dict[str, str]) -> str | None:
    if not isinstance(agent_id, str) or not agent_id:
        return None
    return names.get(agent_id, agent_id)
