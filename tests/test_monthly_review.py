"""The monthly review: invoice sync, reconciliation findings, FOCUS export, exact totals."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import email
import email.policy
import io
import json
import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd
import pytest

from reconcile.analysis.billing import NumberFacts, PriceObservation, expected_fees
from reconcile.analysis.invoices import FINDING_COLUMNS, CallUsage, reconcile_invoices
from reconcile.config import load_settings
from reconcile.errors import ConfigError
from reconcile.invoice_sync import run_invoice_sync
from reconcile.jobs.monthly import report_monthly
from reconcile.period import Period
from reconcile.progress import NullProgress
from reconcile.reports.csvfile import frame_csv_bytes
from reconcile.sandbox.billing import billing_for
from reconcile.sandbox.truth import invoice_errors
from reconcile.store import invoices as invoice_store
from reconcile.store import readers
from reconcile.store.invoices import plan_headers
from reconcile.sync import SyncOptions, run_sync
from reconcile.truedy.records import Invoice

GOLDEN = Path(__file__).parent / "golden" / "monthly_findings.csv"
UTC = dt.UTC
OCTOBER = Period(2026, 10)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def number(number_id: str, bought: str, cost: str = "1.15", released: str | None = None, provider: str = "truedy",
           currency: str = "USD", prices: tuple[PriceObservation, ...] | None = None) -> NumberFacts:
    managed = provider == "truedy"
    seen = (PriceObservation(at("2026-11-01T02:30:00"), None, Decimal(cost)),)
    return NumberFacts(number_id, f"+1212555{sum(map(ord, number_id)) % 10000:04d}", provider, managed, currency if managed else None,
                       Decimal("1.00") if managed else None, at(bought), at(released) if released else None,
                       (prices or seen) if managed else ())


def fee(invoice_id: str, line_id: str, number_id: str | None, start: str, end: str, amount: str,
        kind: str = "number_monthly_fee", currency: str = "USD", quantity: str = "1") -> dict:
    return {"invoice_id": invoice_id, "line_item_id": line_id, "position": 0, "type": kind, "number_id": number_id,
            "phone_number": None, "description": kind, "quantity": Decimal(quantity), "unit_amount": Decimal(amount),
            "amount": Decimal(amount), "currency": currency, "service_period_start": dt.date.fromisoformat(start),
            "service_period_end": dt.date.fromisoformat(end)}


def frames(lines: list[dict], totals: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    body = pd.DataFrame(lines)
    body["position"] = range(len(body))
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        sums[line["invoice_id"]] += line["amount"]
    headers = pd.DataFrame([{
        "invoice_id": invoice_id, "currency": invoice_id[-3:].upper(),
        "total": Decimal(totals[invoice_id]) if totals and invoice_id in totals else total,
        "period_start": OCTOBER.first, "period_end": OCTOBER.last,
    } for invoice_id, total in sums.items()])
    return headers, body


# One month with every kind of finding, built by hand; each row was checked by hand.
MONTH_NUMBERS = {n.number_id: n for n in (
    number("num_A", "2026-01-31T10:00:00"),                                   # renews 31 Oct: billed right
    number("num_B", "2026-03-15T08:00:00", cost="2.00"),                      # billed 2.25
    number("num_C", "2026-05-05T08:00:00"),                                   # no line at all
    number("num_D", "2026-06-10T08:00:00"),                                   # billed twice
    number("num_E", "2026-02-25T08:00:00", released="2026-09-20T12:00:00"),   # billed after release
    number("num_F", "2026-04-01T08:00:00", provider="twilio"),                # imported, billed anyway
    number("num_H", "2026-10-12T14:00:00"),                                   # bought in October: both fees
    number("num_K", "2026-02-09T08:00:00", prices=(                           # price rose between two syncs
        PriceObservation(at("2026-10-01T02:30:00"), at("2026-10-08T02:30:00"), Decimal("1.15")),
        PriceObservation(at("2026-10-09T02:30:00"), None, Decimal("1.25")))),
    number("num_L", "2026-07-20T08:00:00"),                                   # billed on the wrong day
    number("num_M", "2026-08-03T08:00:00", cost="0.90", currency="GBP"),      # GBP, billed right
)}
MONTH_LINES = [
    fee("inv_usd", "li_1", "num_A", "2026-10-31", "2026-11-30", "1.15"),
    fee("inv_usd", "li_2", "num_B", "2026-10-15", "2026-11-15", "2.25"),
    fee("inv_usd", "li_3", "num_D", "2026-10-10", "2026-11-10", "1.15"),
    fee("inv_usd", "li_4", "num_D", "2026-10-10", "2026-11-10", "1.15"),
    fee("inv_usd", "li_5", "num_E", "2026-10-25", "2026-11-25", "1.15"),
    fee("inv_usd", "li_6", "num_F", "2026-10-01", "2026-11-01", "1.15"),
    fee("inv_usd", "li_7", "num_GHOST", "2026-10-01", "2026-11-01", "1.15"),
    fee("inv_usd", "li_8", "num_H", "2026-10-12", "2026-11-12", "1.00", kind="number_upfront_fee"),
    fee("inv_usd", "li_9", "num_H", "2026-10-12", "2026-11-12", "1.15"),
    fee("inv_usd", "li_10", "num_K", "2026-10-09", "2026-11-09", "1.25"),
    fee("inv_usd", "li_11", "num_L", "2026-10-03", "2026-11-03", "1.15"),
    fee("inv_usd", "li_12", "num_A", "2026-10-01", "2026-11-01", "0.7500", kind="call_usage", quantity="50"),
    fee("inv_usd", "li_13", None, "2026-10-01", "2026-11-01", "499.00", kind="subscription"),
    fee("inv_gbp", "li_20", "num_M", "2026-10-03", "2026-11-03", "0.90", currency="GBP"),
    fee("inv_gbp", "li_21", "num_M", "2026-10-01", "2026-11-01", "0.0120", kind="call_usage", currency="GBP"),
]
MONTH_USAGE = {("num_A", "USD"): CallUsage(Decimal("0.7350"), 3, 49), ("num_M", "GBP"): CallUsage(Decimal("0.0120"), 1, 1),
               ("num_C", "USD"): CallUsage(Decimal("0.0150"), 1, 1)}


def test_one_golden_month_with_every_kind_of_finding():
    headers, lines = frames(MONTH_LINES, totals={"inv_gbp": "1.00"})
    result = reconcile_invoices(OCTOBER, headers, lines, MONTH_NUMBERS, MONTH_USAGE)
    produced = frame_csv_bytes(result.findings, FINDING_COLUMNS).decode("utf-8")
    if not GOLDEN.exists():  # first run: write it for a person to check by hand, then keep it
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(produced, encoding="utf-8", newline="")
        pytest.fail(f"wrote {GOLDEN}; check it by hand and commit it")
    assert produced == GOLDEN.read_bytes().decode("utf-8")
    assert set(result.findings["issue"]) == {
        "fee_after_release", "missing_fee", "amount_mismatch", "duplicate_fee", "fee_for_imported_number",
        "unknown_number", "usage_mismatch", "unexpected_fee", "total_mismatch"}
    usd = next(c for c in result.checks if c.currency == "USD")
    assert usd.difference == sum(result.findings[result.findings["currency"] == "USD"]["difference"], Decimal(0))


def test_a_clean_month_says_so_with_its_figures():
    clean = [line for line in MONTH_LINES if line["line_item_id"] in ("li_1", "li_8", "li_9", "li_10", "li_13")]
    numbers = {k: MONTH_NUMBERS[k] for k in ("num_A", "num_H", "num_K")}
    headers, lines = frames(clean)
    result = reconcile_invoices(OCTOBER, headers, lines, numbers, {("num_A", "USD"): CallUsage(Decimal(0), 0, 0)})
    assert result.clean and result.findings.empty
    (usd,) = result.checks
    # num_K's renewal fell between the syncs that saw 1.15 and 1.25: the 1.25 billed is the expected amount
    assert (usd.expected_fees, usd.billed_fees, usd.expected_fees_amount) == (4, 4, Decimal("4.55"))
    assert usd.invoice_total == usd.lines_total == Decimal("503.55") and usd.difference == 0


def test_header_plan_updates_drafts_and_flags_a_changed_issued_invoice():
    def invoice(status: str, total: str, issued: dt.datetime | None) -> Invoice:
        return Invoice("inv_1", "INV-1", OCTOBER.first, OCTOBER.last, issued, status, "USD", Decimal(total))

    def stored(i: Invoice) -> dict:
        return {**dataclasses.asdict(i), "lines_synced_at": None, "lines_status": None}

    draft = invoice("draft", "10.00", None)
    assert plan_headers({}, [draft]).insert == [draft]
    grown = invoice("draft", "12.00", None)
    assert plan_headers({"inv_1": stored(draft)}, [grown]).update == [grown]
    issued = invoice("open", "12.00", at("2026-11-01T06:00:00"))
    assert plan_headers({"inv_1": stored(issued)}, [issued]).update == []          # rerun: nothing to do
    paid = invoice("paid", "12.00", at("2026-11-01T06:00:00"))
    assert plan_headers({"inv_1": stored(issued)}, [paid]).update == [paid]         # a normal status move
    changed = invoice("open", "13.00", at("2026-11-01T06:00:00"))
    plan = plan_headers({"inv_1": stored(issued)}, [changed])
    assert plan.update == [] and len(plan.issues) == 1 and "total 12.00 -> 13.00" in plan.issues[0].reason


# -- against the sandbox, over HTTP, on SQLite and PostgreSQL --------------------------------

def synced(make_sandbox, make_client, store, numbers: int = 300):
    server = make_sandbox(numbers=numbers)
    client = make_client(server)
    run_sync(client, store, clock=lambda: server.account.now, options=SyncOptions(call_slices=2))
    return server, client


def settings_in(tmp_path: Path):
    return dataclasses.replace(load_settings(environ={}), reports_dir=tmp_path / "reports")


def review(server, client, store, tmp_path, period: Period):
    run_invoice_sync(client, store, (period,), clock=lambda: server.account.now, progress=NullProgress())
    return report_monthly(settings_in(tmp_path), store, period, lambda: server.account.now,
                          tmp_path / str(period), fetch=False)


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def test_every_deliberate_billing_error_is_found_and_nothing_else(make_sandbox, make_client, store, tmp_path):
    server, client = synced(make_sandbox, make_client, store)
    truth = invoice_errors(server.account)
    assert {e.kind for e in truth} >= {"fee_after_release", "missing_fee", "amount_mismatch", "duplicate_fee",
                                       "fee_for_imported_number", "unknown_number", "usage_mismatch"}
    for period in (Period(2026, 10), Period(2026, 9)):
        outcome = review(server, client, store, tmp_path, period)
        expected = {(e.invoice_id, e.line_item_id or "", e.number_id, e.kind)
                    for e in truth if e.invoice_id.startswith(f"inv_{period.year}{period.month:02d}_")}
        rows = read_csv(outcome.files.reconciliation_csv)
        assert list(rows[0]) == FINDING_COLUMNS
        assert {(r["invoice_id"], r["line_item_id"], r["number_id"], r["issue"]) for r in rows} == expected
        for row in rows:
            assert Decimal(row["difference"]) == Decimal(row["billed_amount"]) - Decimal(row["expected_amount"])
    older = review(server, client, store, tmp_path, Period(2026, 8))  # no deliberate errors in August
    assert read_csv(older.files.reconciliation_csv) == [] and older.review.headline == "invoice matches inventory"
    assert 'id="clean"' in older.files.html.read_text(encoding="utf-8")


def test_invoice_sync_is_idempotent_and_keeps_an_issued_invoice_that_changed(make_sandbox, make_client, store):
    server, client = synced(make_sandbox, make_client, store, numbers=150)
    october = (Period(2026, 10),)
    first = run_invoice_sync(client, store, october, clock=lambda: server.account.now)
    assert first.invoices_new == first.invoices_listed > 0 and first.invoices_read == 3 and first.lines_read > 0
    again = run_invoice_sync(client, store, october, clock=lambda: server.account.now)
    assert (again.invoices_new, again.invoices_updated, again.invoices_read, again.issues) == (0, 0, 0, 0)

    billing = billing_for(server.account)
    usd = next(i for i in billing.invoices if i["id"] == "inv_202610_usd")
    stored_total = Decimal(usd["total"])
    usd["total"] = f"{stored_total + Decimal('5.00'):.2f}"          # the issued invoice changes upstream
    draft = next(i for i in billing.invoices if i["status"] == "draft" and i["currency"] == "USD")
    draft["total"] = f"{Decimal(draft['total']) + Decimal('1.00'):.2f}"
    credit = {**usd, "id": "inv_202610_usd_credit", "number": "CN-2026-10", "total": "-2.00"}  # new, same month
    billing.invoices.append(credit)
    billing.lines[credit["id"]] = [{
        "id": "li_credit_1", "type": "credit", "number_id": None, "phone_number": None, "description": "Goodwill",
        "quantity": "1", "unit_amount": "-2.00", "amount": "-2.00", "currency": "USD",
        "service_period_start": "2026-10-01", "service_period_end": "2026-11-01"}]
    changed = run_invoice_sync(client, store, october, clock=lambda: server.account.now)
    assert changed.issues == 1 and changed.invoices_updated == 1  # the draft
    assert (changed.invoices_new, changed.invoices_read, changed.lines_read) == (1, 1, 1)  # only the new one read
    with store.connect() as connection:
        headers = invoice_store.headers_frame(connection).set_index("invoice_id")
        issues = invoice_store.issues_frame(connection, ["inv_202610_usd"])
    assert headers.loc["inv_202610_usd", "total"] == stored_total
    assert headers.loc[draft["id"], "total"] == Decimal(draft["total"])
    assert "changed after issue" in issues.iloc[0]["reason"]
    assert run_invoice_sync(client, store, october, clock=lambda: server.account.now).issues == 0  # said once


def test_page_totals_equal_the_csv_sums_to_the_cent(make_sandbox, make_client, store, tmp_path):
    server, client = synced(make_sandbox, make_client, store)
    outcome = review(server, client, store, tmp_path, Period(2026, 10))
    html = outcome.files.html.read_text(encoding="utf-8")
    focus = read_csv(outcome.files.focus_csv)
    billed: dict[str, Decimal] = defaultdict(Decimal)
    for row in focus:
        billed[row["BillingCurrency"]] += Decimal(row["BilledCost"])
    invoice_totals = {i["currency"]: Decimal(i["total"]) for i in billing_for(server.account).invoices
                      if i["period_start"] == "2026-10-01"}
    assert billed == invoice_totals
    spans = list(re.finditer(
        r'data-total="focus-billed" data-currency="(\w+)" data-amount="([\d.\-]+)"[^>]*>([\d,.\-]+) ', html))
    assert {m.group(1): Decimal(m.group(2)) for m in spans} == billed, "the exact total, in the page's data"
    shown_billed = {m.group(1): Decimal(m.group(3).replace(",", "")) for m in spans}
    assert shown_billed == {c: a.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) for c, a in billed.items()}, \
        "shown as billed: to the cent"
    findings = read_csv(outcome.files.reconciliation_csv)
    differences: dict[str, Decimal] = defaultdict(Decimal)
    for row in findings:
        differences[row["currency"]] += Decimal(row["difference"])
    shown = {m.group(1): Decimal(m.group(2)) for m in re.finditer(
        r'<tr data-currency="(\w+)" data-clean="\w+">.*?data-difference="([\d.\-]+)"', html, re.S)}
    assert shown == {c: differences.get(c, Decimal(0)) for c in shown} and set(differences) <= set(shown)
    assert len(re.findall(r"<tr data-issue=", html)) == len(findings)


def test_focus_rows_follow_the_specification(make_sandbox, make_client, store, tmp_path):
    server, client = synced(make_sandbox, make_client, store)
    settings = settings_in(tmp_path)
    run_invoice_sync(client, store, (Period(2026, 10),), clock=lambda: server.account.now)
    outcome = report_monthly(settings, store, Period(2026, 10), lambda: server.account.now, tmp_path / "f", fetch=False)
    rows = read_csv(outcome.files.focus_csv)
    stamp = re.compile(r"^\d{4}-\d{2}-\d{2}T00:00:00Z$")
    frequency = {"number_monthly_fee": "Recurring", "subscription": "Recurring", "number_upfront_fee": "One-Time",
                 "call_usage": "Usage-Based", "carrier_estimate": "Recurring"}
    assert {r["x_LineItemType"] for r in rows} >= {"number_monthly_fee", "call_usage", "subscription"}
    for row in rows:
        for name in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"):
            assert stamp.match(row[name]), (name, row[name])
        assert (row["BillingPeriodStart"], row["BillingPeriodEnd"]) == ("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")
        assert row["ChargePeriodStart"] < row["ChargePeriodEnd"]
        assert row["ChargeFrequency"] == frequency[row["x_LineItemType"]]
        assert row["ChargeCategory"] in ("Purchase", "Usage", "Credit", "Adjustment")
        usage = row["ChargeCategory"] == "Usage"
        assert bool(row["ConsumedQuantity"]) == bool(row["ConsumedUnit"]) == usage
        assert Decimal(row["ListCost"]) == Decimal(row["ListUnitPrice"]) * Decimal(row["PricingQuantity"])
        assert isinstance(json.loads(row["Tags"]), dict)
        if row["x_CostSource"] == "estimate":  # an imported number: never in a billed total
            assert row["InvoiceId"] == "" and row["ProviderName"] in ("Twilio", "Telnyx")
            assert Decimal(row["BilledCost"]) == Decimal(row["EffectiveCost"]) == 0 < Decimal(row["x_EstimatedCost"])
        else:
            assert row["InvoiceIssuerName"] == "Truedy" and row["InvoiceId"].startswith("inv_202610_")
    assert all(r["x_CostSource"] == "invoice" for r in rows), "focus.csv: invoice lines only"
    assert all(r["BillingAccountId"] == "truedy" and r["BillingAccountName"] == "Truedy" for r in rows)
    subcategory = {"Truedy Phone Numbers": "Network Connectivity", "Truedy Voice Calls": "Network Connectivity",
                   "Truedy Platform": "Bots"}
    assert all(subcategory[r["ServiceName"]] == r["ServiceSubcategory"] for r in rows), "one subcategory a service"
    assert all("." in r["PricingQuantity"] for r in rows), "a decimal, as FOCUS types it"


def test_a_month_not_over_or_an_empty_store_is_refused(store, tmp_path):
    from reconcile.errors import StoreError

    with pytest.raises(ConfigError, match="not over yet"):
        report_monthly(settings_in(tmp_path), store, Period(2026, 11), lambda: at("2026-11-27T10:00:00"),
                       tmp_path, fetch=False)
    with pytest.raises(StoreError, match="run `reconcile sync` first"):
        report_monthly(settings_in(tmp_path), store, Period(2026, 10), lambda: at("2026-11-27T10:00:00"),
                       tmp_path, fetch=False)


def test_a_number_released_before_the_listings_reach_is_looked_up_by_id(make_sandbox, make_client, store, tmp_path):
    from reconcile.sandbox import generate_account
    from reconcile.sandbox.account import RELEASED_LISTING_DAYS
    from tests.conftest import START

    account = generate_account(seed=11, numbers=150, start=START)
    old = next(n for n in account.numbers if n.status == "released" and n.is_truedy_managed)
    old.purchased_at = START - dt.timedelta(days=RELEASED_LISTING_DAYS + 200)
    old.released_at = START - dt.timedelta(days=RELEASED_LISTING_DAYS + 30)
    old.cost_history = [(old.purchased_at, Decimal("1.15"))]
    old.touch()
    account.reindex()
    server = make_sandbox(account=account)
    client = make_client(server)
    run_sync(client, store, clock=lambda: account.now, options=SyncOptions(call_slices=2))
    usd = next(i for i in billing_for(account).invoices if i["id"] == "inv_202610_usd")
    lines = billing_for(account).lines["inv_202610_usd"]
    lines.append({**next(li for li in lines if li["type"] == "number_monthly_fee"), "id": "li_zombie",
                  "number_id": old.id, "phone_number": old.phone_number, "amount": "1.15", "unit_amount": "1.15"})
    usd["total"] = f"{Decimal(usd['total']) + Decimal('1.15'):.2f}"
    outcome = review(server, client, store, tmp_path, Period(2026, 10))
    rows = {r["line_item_id"]: r for r in read_csv(outcome.files.reconciliation_csv)}
    assert rows["li_zombie"]["issue"] == "fee_after_release" and rows["li_zombie"]["number_id"] == old.id
    assert rows["li_zombie"]["phone_number"] == old.phone_number
    assert old.id not in {n.id for n in account.listing("released")}  # only the lookup by id knew it


def test_run_monthly_reviews_last_month_and_mails_finance_once(make_sandbox, make_client, store, tmp_path):
    from reconcile.config import SANDBOX_API_KEY, Secret
    from reconcile.jobs.monthly import run_monthly

    server, _ = synced(make_sandbox, make_client, store, numbers=150)
    base = settings_in(tmp_path)
    settings = dataclasses.replace(
        base, truedy=dataclasses.replace(base.truedy, base_url=server.url, api_key=Secret(SANDBOX_API_KEY)),
        notify=dataclasses.replace(base.notify, finance_recipients=("finance@example.com",)),
        mail=dataclasses.replace(base.mail, outbox_dir=tmp_path / "outbox"),
        reports_base_url="https://intranet.example/reconcile/")
    first = run_monthly(settings, clock=lambda: server.account.now, engine=store, progress=NullProgress())
    assert first.review.period == Period(2026, 10) and first.sent == ["finance@example.com"]
    again = run_monthly(settings, clock=lambda: server.account.now, engine=store, progress=NullProgress())
    assert again.sent == [] and again.already_sent == ["finance@example.com"]
    (message,) = (tmp_path / "outbox").glob("*.eml")
    text = message.read_text(encoding="utf-8")
    parsed = email.message_from_string(text, policy=email.policy.default)
    assert parsed["Subject"] == f"Truedy invoice review 2026-10: {first.review.headline}"
    attachments = {part.get_filename(): part for part in parsed.iter_attachments()}
    assert set(attachments) == {"monthly-2026-10.html", "review-2026-10.xlsx", "reconciliation-2026-10.csv"}
    csv_part = attachments["reconciliation-2026-10.csv"]
    assert csv_part.get_content_charset() == "utf-8", "declared, so a label like Zürich round-trips"
    assert csv_part.get_content().encode() == first.files.reconciliation_csv.read_bytes()
    assert attachments["monthly-2026-10.html"].get_content() == first.files.html.read_text(encoding="utf-8")
    assert attachments["review-2026-10.xlsx"].get_content() == first.files.review_xlsx.read_bytes()
    html_part = parsed.get_body(preferencelist=("html",)).get_content()
    assert "<title>Truedy invoice review 2026-10</title>" in html_part
    assert "Other lines" in html_part and "subscription" in html_part, "every total adds up from what is shown"
    assert 'href="https://intranet.example/reconcile/monthly-2026-10/monthly.html"' in html_part
    assert SANDBOX_API_KEY not in text


def test_a_malformed_line_item_is_an_invoice_issue_on_the_page_not_a_crash(make_sandbox, make_client, store, tmp_path):
    server, client = synced(make_sandbox, make_client, store, numbers=150)
    lines = billing_for(server.account).lines["inv_202610_usd"]
    broken = next(li for li in lines if li["type"] == "number_monthly_fee" and not li["id"].startswith("inv_"))
    broken["amount"] = 1.15  # a JSON number: the contract says money is a decimal string
    outcome = review(server, client, store, tmp_path, Period(2026, 10))
    issues = outcome.review.invoice_issues
    assert list(zip(issues["record_id"], issues["field"], strict=True)) == [(broken["id"], "amount")]
    html = outcome.files.html.read_text(encoding="utf-8")
    assert 'id="invoice-issues"' in html and broken["id"] in html
    rows = read_csv(outcome.files.reconciliation_csv)
    # the refused line is not counted as billed: its fee shows as missing, with the issue beside it
    assert {(r["number_id"], r["issue"]) for r in rows} >= {(broken["number_id"], "missing_fee")}


def test_configured_carrier_estimates_are_marked_and_never_billed(make_sandbox, make_client, store, tmp_path):
    from reconcile.config import CarrierCost

    server, client = synced(make_sandbox, make_client, store)
    base = settings_in(tmp_path)
    settings = dataclasses.replace(base, carrier_costs={"twilio": CarrierCost(Decimal("1.15"), "USD"),
                                                        "telnyx": CarrierCost(None, "USD")})
    run_invoice_sync(client, store, (Period(2026, 10),), clock=lambda: server.account.now)
    outcome = report_monthly(settings, store, Period(2026, 10), lambda: server.account.now, tmp_path / "e", fetch=False)
    rows = read_csv(outcome.files.focus_csv)
    assert not [r for r in rows if r["x_CostSource"] == "estimate"], "estimates stay out of the FOCUS dataset"
    estimates = read_csv(outcome.files.carrier_estimates_csv)
    assert estimates and all(r["x_CostSource"] == "estimate" and r["InvoiceId"] == "" for r in estimates)
    start, end = Period(2026, 10).start, Period(2026, 10).end
    held = {n.id for n in server.account.numbers if n.provider == "twilio" and n.purchased_at < end
            and (n.released_at is None or n.released_at > start)}
    assert {r["ResourceId"] for r in estimates} == held and held
    assert all(r["ProviderName"] == "Twilio" and r["x_EstimatedCost"] == "1.15" and r["BilledCost"] == "0.00"
               for r in estimates)
    billed = defaultdict(Decimal)
    for r in rows:
        billed[r["BillingCurrency"]] += Decimal(r["BilledCost"])
    assert billed == {i["currency"]: Decimal(i["total"]) for i in billing_for(server.account).invoices
                      if i["period_start"] == "2026-10-01"}
    html = outcome.files.html.read_text(encoding="utf-8")
    assert 'id="estimates"' in html and "not configured" in html  # telnyx has no estimate
    assert re.search(rf'data-total="focus-estimated" data-currency="USD" data-amount="{Decimal("1.15") * len(held)}"'
                     rf'[^>]*>{Decimal("1.15") * len(held):,.2f} USD', html)


def test_a_month_still_billed_on_a_draft_says_the_figures_may_change(make_sandbox, make_client, store, tmp_path):
    server, client = synced(make_sandbox, make_client, store, numbers=150)
    usd = next(i for i in billing_for(server.account).invoices if i["id"] == "inv_202610_usd")
    usd.update(status="draft", issued_at=None)
    html = review(server, client, store, tmp_path, Period(2026, 10)).files.html.read_text(encoding="utf-8")
    assert "<strong>inv_202610_usd</strong> (USD, draft)" in html and "A draft invoice can still change" in html


def test_every_kind_of_finding_is_a_check_registered_by_name():
    from reconcile.analysis.invoices import CHECKS, ISSUES

    assert ISSUES == ("missing_invoice", "fee_after_release", "missing_fee", "amount_mismatch", "duplicate_fee",
                      "fee_for_imported_number", "unknown_number", "usage_mismatch", "unexpected_fee",
                      "total_mismatch")
    assert all(check.name == name and check.description and callable(check.find) for name, check in CHECKS.items())


def test_fees_expected_in_a_currency_with_no_invoice_are_one_missing_invoice_finding():
    """Only the USD invoice arrived: the GBP fee (and GBP usage) become one missing_invoice finding carrying
    the whole expected amount, not a missing_fee per number; with no invoice at all, one per currency."""
    usd_only = [line for line in MONTH_LINES if line["currency"] == "USD"]
    headers, lines = frames(usd_only)
    result = reconcile_invoices(OCTOBER, headers, lines, MONTH_NUMBERS, MONTH_USAGE)
    gbp = result.findings[result.findings["currency"] == "GBP"]
    assert list(gbp["issue"]) == ["missing_invoice"]
    (row,) = gbp.to_dict("records")
    assert (row["expected_amount"], row["billed_amount"], row["difference"]) == (
        Decimal("0.9120"), Decimal(0), Decimal("-0.9120"))
    assert row["detail"] == ("Truedy lists no GBP invoice for 2026-10, yet 1 number fee(s) and call usage of "
                             "0.012 GBP were expected: 0.912 GBP")
    empty = pd.DataFrame(columns=headers.columns)
    nothing = reconcile_invoices(OCTOBER, empty, lines.iloc[0:0], MONTH_NUMBERS, None)
    assert sorted(nothing.findings["issue"]) == ["missing_invoice", "missing_invoice"]
    assert set(nothing.findings["currency"]) == {"USD", "GBP"}
    usd = nothing.findings[nothing.findings["currency"] == "USD"].iloc[0]
    expected_usd = sum((f.amount for n in MONTH_NUMBERS.values() for f in expected_fees(n, OCTOBER)
                        if f.currency == "USD"), Decimal(0))
    assert usd["expected_amount"] == expected_usd and usd["difference"] == -expected_usd


def test_billed_minutes_count_each_call_s_started_minutes_on_both_engines(store):
    """Two calls of 240 s and 360 s are 4 + 6 = 10 billed minutes (not 11: no true division in SQL)."""
    from reconcile.store import invoices as invoice_store
    from reconcile.store import writer

    run_id = writer.begin_run(store, at("2026-10-20T02:30:00"), at("2026-10-20T02:30:00"))
    rows = [{"call_id": f"call_{i}", "agent_id": "agt_1", "number_id": "num_A", "direction": "outbound",
             "from_number": "+12125550100", "to_number": "+12125550101", "started_at": at(f"2026-10-0{i + 1}T10:00:00"),
             "ended_at": at(f"2026-10-0{i + 1}T10:10:00"), "duration_seconds": seconds, "cost_amount": Decimal(cost),
             "cost_currency": "USD", "sync_run_id": run_id}
            for i, (seconds, cost) in enumerate([(240, "0.06"), (360, "0.09"), (61, "0.03")])]
    with store.begin() as connection:
        writer.insert_calls(connection, rows)
    with store.connect() as connection:
        usage = invoice_store.usage_of(invoice_store.usage_rows(connection, OCTOBER.start, OCTOBER.end))
    assert usage == {("num_A", "USD"): CallUsage(Decimal("0.18"), 3, 4 + 6 + 2)}


def test_the_review_ties_releases_to_their_plan_from_the_journal(make_sandbox, make_client, store, tmp_path):
    """A fee billed after a plan's release names the plan; numbers released by plans in the month are listed
    with their saving and the last fee billed, from the release journal."""
    from reconcile.sandbox.truth import invoice_errors
    from reconcile.store import releases as plans

    server, client = synced(make_sandbox, make_client, store)
    after = next(e for e in invoice_errors(server.account)
                 if e.kind == "fee_after_release" and e.invoice_id.startswith("inv_202610_"))
    gone = next(n for n in server.account.numbers if n.id == after.number_id)
    kept_on = next(n for n in server.account.numbers if n.is_truedy_managed and n.status == "active"
                   and n.purchased_at < at("2026-09-01T00:00:00"))
    with store.connect() as connection:
        run_id = readers.latest_complete_run(connection).id
    item = {"phone_number": "+1", "flag": "unassigned", "reason": "r", "currency": "USD", "first_flagged_at": None,
            "last_call_at": None, "inbound_agent_id": None, "outbound_agent_id": None}
    plan_id = plans.create(store, created_at=at("2026-09-01T00:00:00"), created_by="ops", sync_run_id=run_id,
                           release_on=dt.date(2026, 9, 8), criteria={},
                           items=[{**item, "number_id": gone.id, "monthly_cost": gone.monthly_cost},
                                  {**item, "number_id": kept_on.id, "monthly_cost": Decimal("2.15")}])
    _, items = plans.plan(store, plan_id)
    plans.journal(store, items[0].id, "released", "released", at("2026-09-08T03:00:00"), gone.released_at)
    plans.journal(store, items[1].id, "released", "released", at("2026-10-15T03:00:00"), at("2026-10-15T03:00:00"))
    outcome = review(server, client, store, tmp_path, Period(2026, 10))
    findings = outcome.review.reconciliation.findings
    row = findings[(findings["issue"] == "fee_after_release") & (findings["number_id"] == gone.id)].iloc[0]
    assert row["detail"].startswith(f"released by release plan {plan_id} ")
    (listed,) = outcome.review.plan_releases
    assert listed["number_id"] == kept_on.id and listed["plan_id"] == plan_id
    assert " for 2026-10-" in listed["last_fee"], "the last fee billed for it this month"
    assert [(t.currency, t.amount) for t in outcome.review.plan_realised] == [("USD", Decimal("2.15"))]
    html = outcome.files.html.read_text(encoding="utf-8")
    assert 'id="plan-releases"' in html and kept_on.id in html
