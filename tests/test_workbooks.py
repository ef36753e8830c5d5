"""review.xlsx and flagged.xlsx, read back with openpyxl: text stays text, money is money, totals add up."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import os
import subprocess
import sys
import zipfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import openpyxl

from reconcile.config import load_settings
from reconcile.invoice_sync import run_invoice_sync
from reconcile.jobs.monthly import report_monthly
from reconcile.jobs.nightly import report_nightly
from reconcile.period import Period
from reconcile.sync import SyncOptions, run_sync

ROOT = Path(__file__).resolve().parent.parent


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def sheet_rows(ws) -> list[dict]:
    header = [cell.value for cell in ws[1]]
    return [dict(zip(header, row, strict=True)) for row in ws.iter_rows(min_row=2, values_only=True)]


def assert_well_formed(ws) -> None:
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == ws.dimensions
    assert all(ws.column_dimensions[c.column_letter].width >= 8 for c in ws[1])
    assert not [c.coordinate for row in ws.iter_rows() for c in row if c.data_type == "f"], "no formula cells"


def test_flagged_xlsx(make_sandbox, make_client, store, tmp_path):
    server = make_sandbox(numbers=300)
    run_sync(make_client(server), store, clock=lambda: server.account.now, options=SyncOptions(call_slices=2))
    settings = dataclasses.replace(load_settings(environ={}), reports_dir=tmp_path)
    files = report_nightly(settings, store, out_dir=tmp_path / "night").files
    ws = openpyxl.load_workbook(files.flagged_xlsx)["Flagged numbers"]
    assert_well_formed(ws)
    rows = sheet_rows(ws)
    flagged = read_csv(files.flagged_csv)
    assert len(rows) == len(flagged) > 20
    for row, cells in zip(rows, ws.iter_rows(min_row=2), strict=True):
        phone = cells[1]
        assert phone.data_type == "s" and phone.number_format == "@" and str(row["Phone number"]).startswith("+")
    saving_cells = [cells[11] for cells in ws.iter_rows(min_row=2) if cells[11].value is not None]
    assert all(isinstance(c.value, (int, float)) and '"' in c.number_format for c in saving_cells), "money is money"
    book_totals: dict[str, Decimal] = defaultdict(Decimal)
    csv_totals: dict[str, Decimal] = defaultdict(Decimal)
    for row, line in zip(rows, flagged, strict=True):
        if line["monthly_savings"]:
            csv_totals[line["currency"]] += Decimal(line["monthly_savings"])
            book_totals[line["currency"]] += Decimal(str(row["Monthly saving"]))
    assert book_totals == csv_totals
    labels = [c[2] for c in ws.iter_rows(min_row=2) if isinstance(c[2].value, str) and c[2].value[:1] in "=+-@"]
    assert labels and all(c.data_type == "s" for c in labels), "a formula a customer typed stays text"
    agents = {row["Inbound agent"] for row in rows} | {row["Outbound agent"] for row in rows}
    assert not any(isinstance(a, str) and a.startswith("agt_") for a in agents), "agents by name"


def test_review_xlsx(make_sandbox, make_client, store, tmp_path):
    server = make_sandbox(numbers=150)
    client = make_client(server)
    run_sync(client, store, clock=lambda: server.account.now, options=SyncOptions(call_slices=1))
    settings = dataclasses.replace(load_settings(environ={}), reports_dir=tmp_path)
    run_invoice_sync(client, store, (Period(2026, 10),), clock=lambda: server.account.now)
    outcome = report_monthly(settings, store, Period(2026, 10), lambda: server.account.now, tmp_path / "m",
                             fetch=False)
    book = openpyxl.load_workbook(outcome.files.review_xlsx)
    assert book.sheetnames == ["Verdict", "Figures", "Findings", "FOCUS summary"]
    for ws in book.worksheets:
        assert_well_formed(ws)
    (verdict,) = sheet_rows(book["Verdict"])
    assert verdict["Verdict"] == outcome.review.headline and verdict["Month"] == "2026-10"
    findings = read_csv(outcome.files.reconciliation_csv)
    rows = sheet_rows(book["Findings"])
    assert len(rows) == len(findings)
    differences: dict[str, Decimal] = defaultdict(Decimal)
    for line in findings:
        differences[line["currency"]] += Decimal(line["difference"])
    book_differences: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        book_differences[row["Currency"]] += Decimal(str(row["Difference"]))
    assert book_differences == differences
    figures = {row["Currency"]: row for row in sheet_rows(book["Figures"])}
    for check in outcome.review.reconciliation.checks:
        row = figures[check.currency]
        assert Decimal(str(row["Invoice total"])) == check.invoice_total
        assert Decimal(str(row["Difference"])) == check.difference
        shown = Decimal(str(row["Number fees billed"])) + Decimal(str(row["Usage billed (rated)"])) + sum(
            (Decimal(str(v)) for k, v in row.items() if k.startswith("Other: ")), Decimal(0))
        assert shown == check.invoice_total == check.lines_total, "the total adds up from what is shown"
    focus_billed: dict[str, Decimal] = defaultdict(Decimal)
    for line in read_csv(outcome.files.focus_csv):
        focus_billed[line["BillingCurrency"]] += Decimal(line["BilledCost"])
    assert {r["Currency"]: Decimal(str(r["BilledCost (all invoice lines)"])) for r in sheet_rows(book["FOCUS summary"])} \
        == focus_billed
    phones = [c for c in book["Findings"]["E"][1:] if c.value]
    assert phones and all(c.data_type == "s" for c in phones)


WRITE_ONE_BOOK = """
import datetime as dt, sys
from decimal import Decimal
from pathlib import Path
from reconcile.reports.xlsx import Book, Sheet
book = Book()
sheet = Sheet(book, "Money", ["Amount", "Label"])
sheet.columns([[Decimal("1.15"), Decimal("200"), Decimal("3.5"), None], ["a", "=b", None, "<c>"]],
              currencies=["USD", "JPY", "EUR", None])
book.save(Path(sys.argv[1]), dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
"""


def test_the_same_rows_give_the_same_bytes_whatever_the_hash_seed(tmp_path):
    """A report set is compared whole: the workbook must not depend on a set's order in one process."""
    made = []
    for seed in ("1", "2", "3"):
        path = tmp_path / f"book-{seed}.xlsx"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", WRITE_ONE_BOOK, str(path)], check=True, env=env, cwd=ROOT)
        made.append(path.read_bytes())
    assert made[0] == made[1] == made[2]
    ws = openpyxl.load_workbook(tmp_path / "book-1.xlsx")["Money"]
    assert [c.number_format for c in ws["A"][1:4]] == ['#,##0.00 "USD"', '#,##0 "JPY"', '#,##0.00 "EUR"']
    assert [c.value for c in ws["B"][1:]] == ["a", "=b", None, "<c>"] and ws["B3"].data_type == "s"


def test_a_column_writes_each_value_as_it_reads_when_values_repeat(tmp_path):
    """Repeated values are rendered once and reused; equal Decimals written differently stay as they read."""
    from reconcile.reports.xlsx import Book, Sheet

    book = Book()
    sheet = Sheet(book, "Repeats", ["Amount", "Label"])
    one, two = Decimal("1.5"), Decimal("1.50")
    sheet.columns([[one, two, one, two], ["a&b", "plain", "a&b", None]], currencies=["USD"] * 4)
    path = tmp_path / "repeats.xlsx"
    book.save(path, dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert [cell.split("<v>")[1] for cell in xml.split("</v>")[:-1]] == ["1.5", "1.50", "1.5", "1.50"]
    ws = openpyxl.load_workbook(path)["Repeats"]
    assert [c.value for c in ws["B"][1:]] == ["a&b", "plain", "a&b", None]
