"""The finance review: monthly.html (self-contained), reconciliation.csv and focus.csv."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from reconcile.alongside import alongside
from reconcile.analysis.focus import FOCUS_COLUMNS, FocusExport, billed_by_currency
from reconcile.analysis.invoices import FINDING_COLUMNS
from reconcile.analysis.monthly import MonthlyReview
from reconcile.clock import format_timestamp
from reconcile.money import format_billed, format_display
from reconcile.reports.csvfile import frame_rows, write_frame_csv, write_frames_csv
from reconcile.reports.environment import environment
from reconcile.reports.output import report_folder
from reconcile.reports.workbook import write_review_xlsx

QUANTITIES = ("PricingQuantity", "ConsumedQuantity")
LISTED_NUMBERS = 1000
NAMES = ("monthly.html", "reconciliation.csv", "focus.csv", "review.xlsx", "carrier_estimates.csv")


@dataclass(frozen=True)
class MonthlyFiles:
    directory: Path
    html: Path
    reconciliation_csv: Path
    focus_csv: Path
    review_xlsx: Path
    carrier_estimates_csv: Path


def render_monthly(focus: FocusExport, review: Callable[[], MonthlyReview],
                   out_dir: Path) -> tuple[MonthlyReview, MonthlyFiles]:
    """Write the files into `out_dir` (made if missing) as one set; focus.csv a slice at a time.

    focus.csv and carrier_estimates.csv need only the FOCUS rows: they are written alongside
    (by a forked copy, see `reconcile.alongside`) while `review()` reconciles the month.
    """
    with report_folder(out_dir, "monthly review", NAMES) as staging, \
            alongside(lambda: _write_focus(focus, staging), "writing focus.csv") as focus_files:
        made = review()
        findings = made.reconciliation.findings
        write_frame_csv(staging / "reconciliation.csv", findings, FINDING_COLUMNS)
        totals = focus_files.result()
        write_review_xlsx(made, totals.billed, totals.rows, staging / "review.xlsx")
        html = environment().get_template("monthly.html.j2").render(
            r=made, rec=made.reconciliation, findings=list(frame_rows(findings)),
            bought=_numbers(made.movement.bought), released=_numbers(made.movement.released),
            listed_limit=LISTED_NUMBERS, focus_totals=totals,
            issues=list(frame_rows(made.invoice_issues)), invoices=list(frame_rows(made.invoices)),
            money=format_display, billed=format_billed, ts=format_timestamp)
        (staging / "monthly.html").write_text(html, encoding="utf-8")
    return made, MonthlyFiles(out_dir, *(out_dir / name for name in NAMES))


def _write_focus(focus: FocusExport, staging: Path) -> FocusTotals:
    """focus.csv and carrier_estimates.csv; what they hold, summed (the page and the workbook quote it)."""
    totals = FocusTotals()
    chunks = (totals.add(_plain_quantities(chunk)) for chunk in focus.chunks())
    write_frames_csv(staging / "focus.csv", chunks, FOCUS_COLUMNS, currency_column="BillingCurrency")
    estimates = totals.add(_plain_quantities(focus.estimate_rows()))
    write_frame_csv(staging / "carrier_estimates.csv", estimates, FOCUS_COLUMNS, currency_column="BillingCurrency")
    return totals


@dataclass
class FocusTotals:
    """What focus.csv holds, summed as its rows are written: the page quotes these."""

    rows: int = 0
    estimate_rows: int = 0
    billed: dict[str, Decimal] = field(default_factory=dict)
    estimated: dict[str, Decimal] = field(default_factory=dict)

    def add(self, chunk: pd.DataFrame) -> pd.DataFrame:
        invoice = chunk[chunk["x_CostSource"] == "invoice"]
        self.rows += len(invoice)
        for currency, amount in billed_by_currency(invoice).items():
            self.billed[currency] = self.billed.get(currency, Decimal(0)) + amount
        estimates = chunk[chunk["x_CostSource"] == "estimate"]
        self.estimate_rows += len(estimates)
        for currency, amount in zip(estimates["BillingCurrency"], estimates["x_EstimatedCost"], strict=True):
            self.estimated[currency] = self.estimated.get(currency, Decimal(0)) + amount
        return chunk


def _plain_quantities(focus: pd.DataFrame) -> pd.DataFrame:
    """Quantities are counts, not money: plain decimals, always with a point ("1.0", "132.0", "0.5"), as
    FOCUS types PricingQuantity and ConsumedQuantity Decimal (a bare "1" reads as an integer)."""
    for name in QUANTITIES:
        values = focus[name].tolist()
        shown = {q: _decimal_text(q) for q in set(values) if isinstance(q, Decimal)}  # counts repeat: each once
        focus[name] = [shown[q] if isinstance(q, Decimal) else None for q in values]
    return focus


def _decimal_text(quantity: Decimal) -> str:
    text = f"{quantity.normalize():f}"
    return text if "." in text else f"{text}.0"


def _numbers(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = ["number_id", "phone_number", "label", "country_code", "phone_number_type", "provider",
               "monthly_cost", "currency", "purchased_at", "released_at"]
    return list(frame_rows(frame[columns].head(LISTED_NUMBERS)))
