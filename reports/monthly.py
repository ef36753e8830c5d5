"""The finance review: monthly.html (self-contained), reconciliation.csv and focus.csv."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from reconcile.analysis.focus import FOCUS_COLUMNS, billed_by_currency
from reconcile.analysis.invoices import FINDING_COLUMNS
from reconcile.analysis.monthly import MonthlyReview
from reconcile.clock import format_timestamp
from reconcile.money import format_amount
from reports.csvfile import frame_rows, write_frame_csv
from reports.environment import environment
from reports.output import atomic, report_folder

QUANTITIES = ("PricingQuantity", "ConsumedQuantity")
LISTED_NUMBERS = 1000


@dataclass(frozen=True)
class MonthlyFiles:
    directory: Path
    html: Path
    reconciliation_csv: Path
    focus_csv: Path


def render_monthly(review: MonthlyReview, out_dir: Path) -> MonthlyFiles:
    """Write the three files into `out_dir` (made if missing), each atomically."""
    with report_folder(out_dir, "monthly review"):
        files = MonthlyFiles(out_dir, out_dir / "monthly.html", out_dir / "reconciliation.csv", out_dir / "focus.csv")
        findings = review.reconciliation.findings
        atomic(files.reconciliation_csv, lambda p: write_frame_csv(p, findings, FINDING_COLUMNS))
        focus = _plain_quantities(review.focus)
        atomic(files.focus_csv, lambda p: write_frame_csv(p, focus, FOCUS_COLUMNS, currency_column="BillingCurrency"))
        html = environment().get_template("monthly.html.j2").render(
            r=review, rec=review.reconciliation, findings=list(frame_rows(findings)),
            bought=_numbers(review.movement.bought), released=_numbers(review.movement.released),
            listed_limit=LISTED_NUMBERS, focus_totals=_focus_totals(review.focus),
            issues=list(frame_rows(review.invoice_issues)), invoices=list(frame_rows(review.invoices)),
            money=format_amount, ts=format_timestamp)
        atomic(files.html, lambda p: p.write_text(html, encoding="utf-8"))
    return files


def _plain_quantities(focus: pd.DataFrame) -> pd.DataFrame:
    """Quantities are counts, not money: written as plain decimals ("1", "132")."""
    focus = focus.copy()
    for name in QUANTITIES:
        focus[name] = [f"{q.normalize():f}" if isinstance(q, Decimal) else None for q in focus[name]]
    return focus


def _numbers(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = ["number_id", "phone_number", "label", "country_code", "phone_number_type", "provider",
               "monthly_cost", "currency", "purchased_at", "released_at"]
    return list(frame_rows(frame[columns].head(LISTED_NUMBERS)))


def _focus_totals(focus: pd.DataFrame) -> dict[str, Any]:
    billed = focus[focus["x_CostSource"] == "invoice"]
    estimates = focus[focus["x_CostSource"] == "estimate"]
    estimated: dict[str, Decimal] = {}
    for currency, amount in zip(estimates["BillingCurrency"], estimates["x_EstimatedCost"], strict=True):
        estimated[currency] = estimated.get(currency, Decimal(0)) + amount
    return {"rows": len(focus), "billed": billed_by_currency(billed), "estimate_rows": len(estimates),
            "estimated": estimated}
