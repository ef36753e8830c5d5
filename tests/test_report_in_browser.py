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
    _, _, files = run_scenario(SCENARIOS / "protected_imported_currencies", make_sandbox, make_client, store, tmp_path)
    url = files.html.resolve().as_uri()
    dom = chromium("--dump-dom", url).stdout
    assert dom.count('<tr data-flag="') == len(read_csv(files.flagged_csv))
    assert "&lt;script&gt;alert" in dom and "<script>alert" not in dom
    shot = tmp_path / "nightly.png"
    chromium("--window-size=1280,1600", f"--screenshot={shot}", url)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 30_000, "a page with text, tables and charts is not a blank screenshot"
