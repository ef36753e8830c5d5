"""A report folder holds the complete old set or the complete new set: never a mix, never a temp file.

Faults are injected at every write (a full disk, SIGTERM's KeyboardInterrupt), and a real
`report nightly` process is killed with SIGKILL at many moments while it replaces a set.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconcile import alongside
from reconcile.config import load_settings
from reconcile.errors import ReportError
from reconcile.jobs.nightly import report_nightly
from reconcile.reports import csvfile, monthly, nightly
from reconcile.sync import SyncOptions, run_sync

ROOT = Path(__file__).resolve().parent.parent
NIGHTLY = ("nightly.html", "flagged.csv", "inventory.csv", "flagged.xlsx")


def fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name != folder.name)


@pytest.fixture
def two_nights(make_sandbox, make_client, store, tmp_path):
    """A store with two runs: the old set is written from the first, the new one from the second."""
    server = make_sandbox(numbers=120)
    account = server.account
    run_sync(make_client(server), store, clock=lambda: account.now, options=SyncOptions(call_slices=1))
    first = account.now
    account.advance(days=3)
    run_sync(make_client(server), store, clock=lambda: account.now, options=SyncOptions(call_slices=1))
    settings = load_settings(environ={})
    return settings, store, first, account.now, tmp_path / "reports" / "nightly"


@pytest.mark.parametrize("fault", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt("signal 15")])
@pytest.mark.parametrize("failing_write", [0, 1, 2])
def test_a_fault_at_any_write_keeps_the_old_set_whole(two_nights, monkeypatch, fault, failing_write):
    settings, store, first, second, out = two_nights
    report_nightly(settings, store, first, out)
    old = fingerprint(out)
    assert set(old) == set(NIGHTLY)
    writes = {"count": 0}
    real_csv, real_text = csvfile.write_frame_csv, Path.write_text

    def counted(write):
        def wrapper(*args, **kwargs):
            if writes["count"] == failing_write:
                raise fault
            writes["count"] += 1
            return write(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(nightly, "write_frame_csv", counted(real_csv))
    monkeypatch.setattr(nightly, "write_pieces", counted(nightly.write_pieces))  # the page
    monkeypatch.setattr(Path, "write_text", counted(real_text))
    expected = ReportError if isinstance(fault, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as raised:
        report_nightly(settings, store, second, out)
    if expected is ReportError:
        assert "the disk is full" in str(raised.value) and "nothing of the new set" in str(raised.value)
    assert fingerprint(out) == old, "the complete old set, untouched"
    assert siblings(out) == [], "no staging folder left behind"
    monkeypatch.undo()
    report_nightly(settings, store, second, out)
    assert set(fingerprint(out)) == set(NIGHTLY) and fingerprint(out) != old


def test_the_files_written_by_a_forked_copy_are_the_same_bytes_and_its_faults_keep_the_old_set(two_nights,
                                                                                                  monkeypatch):
    settings, store, first, second, out = two_nights
    report_nightly(settings, store, second, out)
    here = fingerprint(out)  # the test process runs the sandbox's thread: the work ran in this process
    monkeypatch.setattr(alongside, "why_not_fork", lambda: None)
    copied = out.with_name("copied")
    report_nightly(settings, store, second, copied)
    assert fingerprint(copied) == here

    report_nightly(settings, store, first, out)
    old = fingerprint(out)
    real_csv, parent = nightly.write_frame_csv, os.getpid()

    def full_disk_at_inventory(path, *args, **kwargs):
        if path.name == "inventory.csv":
            if os.getpid() == parent:
                raise AssertionError("inventory.csv is the forked copy's to write")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_csv(path, *args, **kwargs)

    monkeypatch.setattr(nightly, "write_frame_csv", full_disk_at_inventory)
    with pytest.raises(ReportError, match="the disk is full"):
        report_nightly(settings, store, second, out)
    assert fingerprint(out) == old and siblings(out) == ["copied"]


def test_a_folder_with_files_of_its_own_is_refused_not_emptied(two_nights):
    settings, store, first, _, out = two_nights
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ReportError, match="not this report's"):
        report_nightly(settings, store, first, out)
    assert (out / "notes.txt").read_text() == "mine"


def test_a_full_disk_while_the_monthly_review_is_written_keeps_the_old_set_whole(make_sandbox, make_client, store,
                                                                                 tmp_path, monkeypatch):
    from reconcile.period import Period
    from tests.test_monthly_review import review, synced

    server, client = synced(make_sandbox, make_client, store, numbers=120)
    out = tmp_path / "reports" / "review"
    out.parent.mkdir()
    september = review(server, client, store, tmp_path, Period(2026, 9))
    september.files.directory.rename(out)
    old = fingerprint(out)
    assert set(old) == {"monthly.html", "reconciliation.csv", "focus.csv", "review.xlsx", "carrier_estimates.csv"}

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    october = review_of(server, client, store, tmp_path, Period(2026, 10))
    monkeypatch.setattr(Path, "write_text", full_disk)  # the page, written last: both CSVs are already new
    with pytest.raises(ReportError, match="the disk is full"):
        monthly.render_monthly(october.focus, lambda: october, out)
    assert fingerprint(out) == old, "October's CSVs never sit beside September's page"
    assert siblings(out) == []


def test_focus_csv_from_a_forked_copy_is_the_same_bytes_and_a_full_disk_there_keeps_the_old_set(
        make_sandbox, make_client, store, tmp_path, monkeypatch):
    from reconcile.period import Period
    from tests.test_monthly_review import synced

    server, client = synced(make_sandbox, make_client, store, numbers=120)
    october = review_of(server, client, store, tmp_path, Period(2026, 10))
    here, copied = tmp_path / "here", tmp_path / "copied"
    monthly.render_monthly(october.focus, lambda: october, here)
    monkeypatch.setattr(alongside, "why_not_fork", lambda: None)
    monthly.render_monthly(october.focus, lambda: october, copied)
    assert fingerprint(copied) == fingerprint(here)

    parent = os.getpid()

    def full_disk_in_the_copy(path, *args, **kwargs):
        if os.getpid() == parent:
            raise AssertionError("focus.csv is the forked copy's to write")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(monthly, "write_frames_csv", full_disk_in_the_copy)
    with pytest.raises(ReportError, match="the disk is full"):
        monthly.render_monthly(october.focus, lambda: october, here)
    assert fingerprint(here) == fingerprint(copied) and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def review_of(server, client, store, tmp_path, period):
    """The review of `period`, built but written elsewhere (the test writes it into the folder under test)."""
    from tests.test_monthly_review import review

    return review(server, client, store, tmp_path / "elsewhere", period).review


def test_kill_9_while_a_set_is_replaced_leaves_old_or_new_never_a_mix(two_nights, database_url):
    settings, store, first, second, out = two_nights
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "TRUEDY_"))}
    env["RECONCILE_DATABASE_URL"] = database_url

    def report(as_of):
        return subprocess.Popen([sys.executable, "-m", "reconcile.jobs.cli", "report", "nightly", "--as-of", as_of.isoformat(),
                                 "--out", str(out)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    assert report(first).wait(120) == 0
    old = fingerprint(out)
    assert report(second).wait(120) == 0
    new = fingerprint(out)
    assert old != new
    outcomes = []
    for delay in (0.4, 0.8, 1.0, 1.2, 1.5, 2.0):
        back = report(first)  # put the old set back, then kill a run that replaces it with the new one
        assert back.wait(120) == 0
        victim = report(second)
        time.sleep(delay)
        victim.send_signal(signal.SIGKILL)
        victim.wait(60)
        state = fingerprint(out)
        assert state in (old, new), f"a mix after a kill at {delay} s: {state}"
        outcomes.append(state == new)
        recovered = report(second)  # the next run sweeps what the killed one left beside the folder
        assert recovered.wait(120) == 0
        assert fingerprint(out) == new and siblings(out) == []
    assert outcomes, "the kills happened"
