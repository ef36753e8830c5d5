"""The nightly report: golden scenarios, the contract's columns, a safe and exact HTML page."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
from collections import defaultdict
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reconcile.config import load_settings
from reconcile.jobs.nightly import report_nightly
from reconcile.period import Period
from reconcile.sync import SyncOptions, run_sync
from tests.scenario import SCENARIOS, load_account, scenario_names

CONTRACT_COLUMNS = (
    "number_id, phone_number, label, country_code, phone_number_type, provider, is_truedy_managed, monthly_cost, "
    "currency, inbound_agent_id, outbound_agent_id, purchased_at, last_call_at, idle_days, flag, reason, "
    "recommended_action, monthly_savings, first_flagged_at").split(", ")


def settings_for(folder: Path, tmp_path: Path):
    config = folder / "config.toml"
    settings = load_settings(environ={}, config_path=config if config.exists() else None)
    return dataclasses.replace(settings, reports_dir=tmp_path / "reports")


def run_scenario(folder, make_sandbox, make_client, store, tmp_path):
    account = load_account(folder)
    server = make_sandbox(account=account)
    client = make_client(server)
    run_sync(client, store, clock=lambda: account.now, options=SyncOptions(call_slices=1))
    settings = settings_for(folder, tmp_path)
    return report_nightly(settings, store, out_dir=tmp_path / "out")


@pytest.mark.parametrize("name", scenario_names())
def test_golden_scenario(name, make_sandbox, make_client, store, tmp_path):
    folder = SCENARIOS / name
    files = run_scenario(folder, make_sandbox, make_client, store, tmp_path).files
    produced = files.flagged_csv.read_text(encoding="utf-8")
    golden = folder / "flagged.csv"
    if not golden.exists():  # first run: write it for a person to check by hand, then keep it
        golden.write_text(produced, encoding="utf-8", newline="")
        pytest.fail(f"wrote {golden}; check it by hand and commit it")
    assert produced == golden.read_text(encoding="utf-8")


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def test_csv_columns_are_the_contract_in_order(make_sandbox, make_client, store, tmp_path):
    files = run_scenario(SCENARIOS / "flags_and_boundaries", make_sandbox, make_client, store, tmp_path).files
    header = files.flagged_csv.read_text().splitlines()[0].split(",")
    assert header[: len(CONTRACT_COLUMNS)] == CONTRACT_COLUMNS
    inventory_header = files.inventory_csv.read_text().splitlines()[0].split(",")
    assert inventory_header[:14] == CONTRACT_COLUMNS[:14]
    assert files.flagged_csv.read_bytes().endswith(b"\r\n")


class PageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls, self.totals, self.text, self._total = [], [], [], None
        self.scripts_with_src = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href", "action", "srcset"):
            if attrs.get(name):
                self.urls.append(attrs[name])
        if tag == "script" and attrs.get("src"):
            self.scripts_with_src += 1
        if "data-total" in attrs:
            self._total = (attrs["data-total"], attrs["data-currency"])

    def handle_data(self, data):
        self.text.append(data)
        if self._total:
            self.totals.append((*self._total, data.split()[0]))
            self._total = None


def sums_by_currency(rows, column):
    totals = defaultdict(Decimal)
    for row in rows:
        if row[column]:
            totals[row["currency"]] += Decimal(row[column])
    return dict(totals)


def test_html_is_self_contained_escaped_and_its_totals_equal_the_csv(make_sandbox, make_client, store, tmp_path):
    folder = SCENARIOS / "protected_imported_currencies"
    files = run_scenario(folder, make_sandbox, make_client, store, tmp_path).files
    html = files.html.read_text(encoding="utf-8")
    page = PageParser()
    page.feed(html)
    assert page.urls == [] and page.scripts_with_src == 0
    assert not re.search(r"url\(|@import|https?://(?!evil)", html.split("<script>")[0].split("</style>")[0])
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    flagged = read_csv(files.flagged_csv)
    inventory = read_csv(files.inventory_csv)
    shown = defaultdict(dict)
    for kind, currency, amount in page.totals:
        shown[kind][currency] = Decimal(amount.replace(",", ""))
    assert shown["savings-truedy"] == sums_by_currency([r for r in flagged if r["savings_basis"] == "truedy_fee"],
                                                       "monthly_savings"), "Truedy fees apart from carrier estimates"
    assert shown["savings-estimated"] == sums_by_currency(
        [r for r in flagged if r["savings_basis"] == "carrier_estimate"], "monthly_savings")
    assert shown["monthly_cost"] == {c: v for c, v in sums_by_currency(inventory, "monthly_cost").items()}
    assert set(shown["savings-truedy"]) == {"USD", "GBP", "EUR"}
    for flag in {row["flag"] for row in flagged}:
        assert shown[f"savings:{flag}"] == sums_by_currency([r for r in flagged if r["flag"] == flag], "monthly_savings")


def test_customer_text_is_neutralised_in_csv_but_money_stays_numbers(make_sandbox, make_client, store, tmp_path):
    files = run_scenario(SCENARIOS / "protected_imported_currencies", make_sandbox, make_client, store, tmp_path).files
    rows = {row["number_id"]: row for row in read_csv(files.flagged_csv)}
    assert rows["num_F_eur"]["label"] == "'=1+2"
    assert rows["num_G_usd_idle"]["label"] == "'@SUM(A1:A2)"
    assert rows["num_H_usd_fraction"]["label"] == "'-minus first"
    assert rows["num_H_usd_fraction"]["monthly_savings"] == "1.0075"
    assert rows["num_G_usd_idle"]["phone_number"] == "+14155550207"
    for row in rows.values():
        for cell in row.values():
            assert not cell.startswith(("=", "@", "\t", "\r")) and not (cell.startswith("+") and not cell[1:].isdigit())
    assert rows["num_C_twilio"]["monthly_savings"] == "1.15" and rows["num_C_twilio"]["savings_basis"] == "carrier_estimate"
    assert rows["num_D_telnyx"]["monthly_savings"] == "" and rows["num_D_telnyx"]["savings_basis"] == "unknown"
    assert "num_A_protected_id" not in rows and "num_B_protected_label" not in rows


def test_flag_history_keeps_first_flagged_and_records_how_flags_end(make_sandbox, make_client, store, tmp_path):
    from sqlalchemy import select

    from reconcile.store.schema import flag_history

    folder = SCENARIOS / "flags_and_boundaries"
    account = load_account(folder)
    server = make_sandbox(account=account)
    client = make_client(server)
    settings = settings_for(folder, tmp_path)
    first_night = account.now

    def night():
        run_sync(client, store, clock=lambda: account.now, options=SyncOptions(call_slices=1))
        return report_nightly(settings, store, out_dir=tmp_path / f"out-{account.now:%d}")

    night()
    account._set_now(first_night + dt.timedelta(days=1))
    account.release("num_D_orphaned")
    account.assign("num_A_unassigned_7d", "agt_live", "inbound")
    outcome = night()
    summary, files = outcome.summary, outcome.files
    rows = {row["number_id"]: row for row in read_csv(files.flagged_csv)}
    assert rows["num_E_unknown_agent"]["first_flagged_at"] == "2026-11-20T02:30:00Z"
    assert rows["num_B_unassigned_6d23h"]["first_flagged_at"] == "2026-11-21T02:30:00Z"
    with store.connect() as c:
        ended = dict(c.execute(select(flag_history.c.number_id, flag_history.c.resolution)
                               .where(flag_history.c.resolution.is_not(None))).all())
    assert ended == {"num_D_orphaned": "released", "num_A_unassigned_7d": "assigned"}
    assert summary.changes.counts()["resolved"] == 2 and summary.changes.counts()["released"] == 1
    assert [(t.currency, t.amount, t.count) for t in summary.realised] == [("USD", Decimal("1.15"), 1)]
    assert 'data-total="realised" data-currency="USD" data-count="1">1.15 USD' in files.html.read_text()
    html = files.html.read_text()
    assert not re.search(r">\s*nan\s*<|→ nan|\bNaN\b", html), "missing text is blank, never nan"
    resolved = re.findall(r"<td>([^<]*)</td><td>(\+[0-9]+)</td><td>[^<]*</td><td>(\w+ → \w+)</td>", html)
    assert {(number, change) for number, _, change in resolved} >= {("num_D_orphaned", "orphaned_agent → released"),
                                                                   ("num_A_unassigned_7d", "unassigned → assigned")}
    newly = re.findall(r"<td>([^<]*)</td><td>(\+[0-9]+)</td><td>[^<]*</td><td>newly flagged: (\w+)</td>", html)
    assert ("num_B_unassigned_6d23h", "unassigned") in {(n, f) for n, _, f in newly}, "the phone and the new flag"


def test_report_on_an_empty_store_says_to_sync_first(store, tmp_path):
    from reconcile.errors import StoreError

    with pytest.raises(StoreError, match="run `reconcile sync` first"):
        report_nightly(load_settings(environ={}), store, out_dir=tmp_path)


def test_the_demo_agrees_with_the_sandbox_ground_truth(tmp_path):
    from reconcile.jobs.demo import run_demo

    result = run_demo(root=tmp_path / "demo", nights=3, numbers=200, today=dt.date(2026, 11, 27), say=lambda _: None)
    assert result.truth_agrees, result.truth_detail
    assert result.billing_agrees, result.billing_detail
    assert result.monthly.review.period == Period(2026, 10) and result.monthly.files.focus_csv.exists()
    last = result.nights[-1]
    assert last.files.html.exists() and last.summary.previous_as_of is not None
    assert len(last.summary.trend["run_id"].unique()) == 3
    mails = sorted((tmp_path / "demo" / "outbox").glob("*.eml"))
    releases = [p for p in mails if "Subject: Release plan" in p.read_text(encoding="utf-8")]
    outbox = [p for p in mails if p not in releases]
    assert releases, "the apply's outcome was mailed"
    assert len(outbox) == result.announced + len(result.cleanup.sent) + 1 > 2 and not result.cleanup.failed
    assert result.plan is not None and result.applied is not None, "a plan on night 1, applied on the last night"
    assert result.applied.skipped == 1 and any("kept since the plan" in line for line in result.applied.lines)
    assert result.applied.released == result.plan.count - 1 > 0
    assert last.summary.realised, "the saving shows on the last night's page"
    assert result.monthly.sent == ["finance@example.com"]
    review = [p for p in outbox if "Truedy invoice review 2026-10" in p.read_text(encoding="utf-8")]
    assert len(review) == 1 and "reconciliation-2026-10.csv" in review[0].read_text(encoding="utf-8")


def test_csv_cells_are_the_same_whatever_pandas_dtype_holds_them():
    """Text as "str" (NaN blanks), "string" (NA blanks) or objects; times, flags and counts: one CSV."""
    import pandas as pd

    from reconcile.reports.csvfile import frame_csv_bytes

    texts = ["plain", None, "=SUM(A1)", "+15551234567", "-1"]
    times = pd.to_datetime(["2026-01-02T03:04:05Z", None, "2026-12-31T23:59:59Z", None, "2026-06-01T00:00:00Z"],
                           utc=True)
    expected = ("text,time,flag,count\r\nplain,2026-01-02T03:04:05Z,true,1\r\n,,false,-2\r\n"
                "'=SUM(A1),2026-12-31T23:59:59Z,true,0\r\n+15551234567,,false,4\r\n'-1,2026-06-01T00:00:00Z,true,5\r\n")
    for kind in ("str", "string", object):
        frame = pd.DataFrame({"text": pd.Series(texts, dtype=kind), "time": times,
                              "flag": [True, False, True, False, True], "count": [1, -2, 0, 4, 5]})
        assert frame_csv_bytes(frame, ["text", "time", "flag", "count"]).decode() == expected, kind
