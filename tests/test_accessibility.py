"""axe-core in Chromium over the nightly page, the monthly review and a digest: no serious or critical issue.

axe-core comes from the npm registry (`.ci/run` fetches it into .cache/axe-core/, or point
RECONCILE_AXE_JS at an axe.min.js); without it, or without Chromium, the test is skipped
and says why. The page is copied beside axe.min.js with two script tags added; axe's
result is written into the page, which Chromium dumps.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reconcile.config import load_settings
from reconcile.invoice_sync import run_invoice_sync
from reconcile.jobs.cleanup import run_cleanup
from reconcile.jobs.monthly import report_monthly
from reconcile.jobs.nightly import report_nightly
from reconcile.period import Period
from reconcile.sync import SyncOptions, run_sync

ROOT = Path(__file__).resolve().parent.parent
AXE = Path(os.environ.get("RECONCILE_AXE_JS", ROOT / ".cache" / "axe-core" / "package" / "axe.min.js"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium)"),
    pytest.mark.skipif(not AXE.is_file(), reason=f"no axe-core at {AXE} (npm pack axe-core; .ci/run fetches it)"),
]
RUN = """<script src="axe.min.js"></script><script>
axe.run(document, {resultTypes: ["violations"]}).then(function (r) {
  var pre = document.createElement("pre"); pre.id = "axe-results";
  pre.textContent = JSON.stringify(r.violations.map(function (v) {
    return {id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(function (n) { return n.target.join(" "); })};
  }));
  document.body.appendChild(pre);
});
</script>"""


def violations(html: str, folder: Path, width: int) -> list[dict]:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(AXE, folder / "axe.min.js")
    page = folder / "page.html"
    page.write_text(html.replace("</body>", RUN + "</body>"), encoding="utf-8")
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={folder / 'profile'}", f"--window-size={width},1200",
                           "--virtual-time-budget=30000", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="axe-results">(.*?)</pre>', done.stdout, re.S)
    assert found, f"axe did not report: {done.stderr[-500:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&gt;", ">").replace("&lt;", "<")
                      .replace("&amp;", "&"))


def serious(found: list[dict]) -> list[dict]:
    return [v for v in found if v["impact"] in ("serious", "critical")]


def test_no_serious_accessibility_issue_on_the_pages_and_in_a_digest(make_sandbox, make_client, store, tmp_path):
    server = make_sandbox(numbers=200)
    client = make_client(server)
    run_sync(client, store, clock=lambda: server.account.now, options=SyncOptions(call_slices=1))
    base = load_settings(environ={})
    settings = dataclasses.replace(
        base, reports_dir=tmp_path, mail=dataclasses.replace(base.mail, outbox_dir=tmp_path / "outbox"),
        notify=dataclasses.replace(base.notify, default_recipients=("ops@example.com",)))
    nightly = report_nightly(settings, store, out_dir=tmp_path / "night").files.html.read_text(encoding="utf-8")
    run_invoice_sync(client, store, (Period(2026, 10),), clock=lambda: server.account.now)
    monthly = report_monthly(settings, store, Period(2026, 10), lambda: server.account.now, tmp_path / "month",
                             fetch=False).files.html.read_text(encoding="utf-8")
    run_cleanup(settings, store)
    eml = next(p for p in sorted((tmp_path / "outbox").glob("*.eml")) if "ops@example.com" in p.name)
    digest = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default).get_body(("html",)).get_content()
    for name, html in (("nightly", nightly), ("monthly", monthly), ("digest", digest)):
        for width in (1400, 390):
            found = violations(html, tmp_path / f"axe-{name}-{width}", width)
            assert serious(found) == [], (name, width, found)
