"""`reconcile status` as a health signal: verdicts from the job history and the scheduler's heartbeat."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconcile.health import EXIT_FAILED, EXIT_OVERDUE, job_verdict, scheduler_verdict
from reconcile.jobs.scheduler import JobScheduler
from reconcile.jobs.status import collect_status, format_status
from reconcile.store.jobs import JobRun

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.UTC
NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
GRACE = dt.timedelta(hours=3)


def run(started: str, status: str, exit_code: int | None = 0) -> JobRun:
    at = dt.datetime.fromisoformat(started).replace(tzinfo=UTC)
    return JobRun(1, "nightly", "cron", None, at, at + dt.timedelta(minutes=2), status, exit_code, "", False)


@pytest.mark.parametrize(("runs", "state", "code"), [
    ([run("2026-11-27T02:30", "succeeded")], "ok", 0),
    ([run("2026-11-27T02:30", "failed", 3), run("2026-11-26T02:30", "succeeded")], "failed", EXIT_FAILED),
    ([run("2026-11-27T02:30", "abandoned", None)], "failed", EXIT_FAILED),
    ([run("2026-11-26T02:30", "succeeded")], "overdue", EXIT_OVERDUE),       # nothing for this morning's slot
    ([run("2026-11-27T02:31", "skipped", 5), run("2026-11-27T02:30", "succeeded")], "ok", 0),  # skips do not count
    ([run("2026-11-27T08:59", "running", None), run("2026-11-27T02:30", "succeeded")], "ok", 0),
    ([], "overdue", EXIT_OVERDUE),                                             # never ran, and a slot is due
])
def test_a_job_verdict(runs, state, code):
    verdict = job_verdict(runs, "30 2 * * *", "UTC", NOW, GRACE)
    assert (verdict.state, verdict.exit_code) == (state, code), verdict.detail


def test_a_slot_inside_the_grace_is_not_overdue_yet():
    verdict = job_verdict([run("2026-11-26T02:30", "succeeded")], "30 2 * * *", "UTC",
                          dt.datetime(2026, 11, 27, 4, 0, tzinfo=UTC), GRACE)
    assert verdict.state == "ok"


def test_the_scheduler_verdict_from_its_heartbeat():
    assert scheduler_verdict(None, NOW).state == "not used" and scheduler_verdict(None, NOW).exit_code == 0
    fresh = scheduler_verdict(NOW - dt.timedelta(seconds=40), NOW)
    assert (fresh.state, fresh.detail) == ("running", "the scheduler was seen 40 s ago")
    silent = scheduler_verdict(NOW - dt.timedelta(minutes=10), NOW)
    assert silent.state == "stopped" and silent.exit_code == EXIT_OVERDUE and "10 min ago" in silent.detail


def test_the_scheduler_beats_into_the_store(store, tmp_path):
    from reconcile.config import load_settings

    settings = load_settings(environ={})
    scheduler = JobScheduler(settings, store, clock=lambda: NOW)
    scheduler.beat()
    report = collect_status(settings, store, now=NOW + dt.timedelta(seconds=40))
    assert report["scheduler"]["state"] == "running" and "40 s ago" in report["scheduler"]["detail"]
    assert str(os.getpid()) in report["scheduler"]["where"]
    later = collect_status(settings, store, now=NOW + dt.timedelta(hours=1))
    assert later["scheduler"]["state"] == "stopped" and later["exit_code"] == EXIT_OVERDUE


def test_summaries_are_never_cut_mid_word(store):
    from reconcile.config import load_settings
    from reconcile.store import jobs as history

    settings = load_settings(environ={})
    words = " ".join(f"word{i}" for i in range(60))
    run_id = history.start(store, "nightly", "cron", None, NOW - dt.timedelta(hours=6))
    history.finish(store, run_id, "succeeded", 0, words, NOW - dt.timedelta(hours=6))
    text = format_status(collect_status(settings, store, now=NOW), width=100)
    line = next(line for line in text.splitlines() if "word0" in line)
    assert line.endswith(" …") and len(line) <= 100
    assert all(token in words.split() for token in line.split("succeeded")[1].split()[2:-1])


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "TRUEDY_"))}
    return subprocess.run([sys.executable, "-m", "reconcile.jobs.cli", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_status_after_a_failed_night_exits_non_zero(tmp_path, database_url):
    (tmp_path / "site.toml").write_text("[truedy]\nmax_attempts = 2\nbackoff_base_s = 0.1\n")
    env = {"RECONCILE_DATABASE_URL": database_url, "TRUEDY_BASE_URL": "http://127.0.0.1:9",
           "TRUEDY_API_KEY": "sandbox-key-not-secret", "RECONCILE_REPORTS_DIR": str(tmp_path / "reports"),
           "RECONCILE_CONFIG": str(tmp_path / "site.toml")}
    assert cli("db", "upgrade", env=env).returncode == 0
    night = cli("run", "nightly", "--trigger", "cron", env=env)
    assert night.returncode == 3, night.stderr
    assert "(attempt 1 of 2); retrying in" in night.stderr, "the retry is said, not silent"
    status = cli("status", env=env)
    assert status.returncode == EXIT_FAILED, status.stdout + status.stderr
    assert "NOT HEALTHY (exit 6)" in status.stdout and "nightly  [30 2 * * *]  FAILED" in status.stdout
    as_json = cli("status", "--json", env=env)
    assert as_json.returncode == EXIT_FAILED
    report = json.loads(as_json.stdout)
    assert report["healthy"] is False and report["jobs"]["nightly"]["health"] == "failed"
    assert report["scheduler"]["state"] == "not used"


def test_status_of_a_healthy_store_exits_zero(store, tmp_path):
    from reconcile.config import load_settings
    from reconcile.store import jobs as history

    settings = dataclasses.replace(load_settings(environ={}))
    for job in ("nightly", "cleanup", "monthly"):
        run_id = history.start(store, job, "cron", None, NOW - dt.timedelta(hours=1))
        history.finish(store, run_id, "succeeded", 0, "ok", NOW - dt.timedelta(hours=1))
    report = collect_status(settings, store, now=NOW)
    assert report["healthy"] and report["exit_code"] == 0, report
