"""The nightly report in a real browser (headless Chromium from Debian's packages).

Skipped where no Chromium is installed; .ci/run installs it when it can.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import pytest

from tests.scenario import SCENARIOS
from tests.test_nightly_report import read_csv, run_scenario

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium)")


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_report_renders_in_chromium_with_every_flagged_row(make_sandbox, make_client, store, tmp_path):
    files = run_scenario(SCENARIOS / "protected_imported_currencies", make_sandbox, make_client, store, tmp_path).files
    url = files.html.resolve().as_uri()
    dom = chromium("--dump-dom", url).stdout
    rows = len(read_csv(files.flagged_csv))
    assert 0 < rows <= 100 and dom.count('<tr data-flag="') == rows  # one page holds them all
    assert "&lt;script&gt;alert" in dom and "<script>alert" not in dom
    shot = tmp_path / "nightly.png"
    chromium("--window-size=1280,1600", f"--screenshot={shot}", url)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 30_000, "a page with text, tables and charts is not a blank screenshot"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_big_flagged_table_shows_one_page_and_holds_every_row(make_sandbox, make_client, store, tmp_path):
    import dataclasses
    import json
    import re

    from reconcile.config import load_settings
    from reconcile.jobs.nightly import report_nightly
    from reconcile.sync import SyncOptions, run_sync

    server = make_sandbox(numbers=700)
    run_sync(make_client(server), store, clock=lambda: server.account.now, options=SyncOptions(call_slices=2))
    settings = dataclasses.replace(load_settings(environ={}), reports_dir=tmp_path)
    files = report_nightly(settings, store, out_dir=tmp_path / "big").files
    rows = read_csv(files.flagged_csv)
    assert len(rows) > 100
    html = files.html.read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="flagged-data">(.*?)</script>', html, re.S).group(1))
    assert [r[1] for r in data] == [r["number_id"] for r in rows]
    dom = chromium("--dump-dom", files.html.resolve().as_uri()).stdout
    assert dom.count('<tr data-flag="') == 100
    assert f"1–100 of {len(rows):,} flagged" in dom
    first = re.search(r'<tr data-flag="(\w+)"><td class="nowrap">([^<]*)<div class="muted">([^<]*)</div>', dom)
    assert (first.group(1), first.group(2), first.group(3)) == (rows[0]["flag"], rows[0]["phone_number"], rows[0]["number_id"])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_monthly_review_renders_in_chromium_with_every_finding(make_sandbox, make_client, store, tmp_path):
    from reconcile.period import Period
    from tests.test_monthly_review import review, synced

    server, client = synced(make_sandbox, make_client, store)
    outcome = review(server, client, store, tmp_path, Period(2026, 10))
    url = outcome.files.html.resolve().as_uri()
    dom = chromium("--dump-dom", url).stdout
    assert dom.count("<tr data-issue=") == len(read_csv(outcome.files.reconciliation_csv)) > 0
    shot = tmp_path / "monthly.png"
    chromium("--window-size=1280,1600", f"--screenshot={shot}", url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 30_000
