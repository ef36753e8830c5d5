"""Logs a log shipper can use: JSON only, structured fields, no third-party chatter, each summary once."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from reconcile.config import SANDBOX_API_KEY, load_settings
from reconcile.jobs.runner import execute_job
from reconcile.jobs.scheduler import JobScheduler
from reconcile.store import jobs as history

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "TRUEDY_"))}
    return subprocess.run([sys.executable, "-m", "reconcile.jobs.cli", *args], cwd=cwd, env={**base, **env},
                          capture_output=True, text=True, timeout=180)


def test_a_config_error_names_where_the_path_came_from(tmp_path):
    flag = cli("--config", str(tmp_path / "nope.toml"), "status", env={})
    assert flag.returncode == 2 and "--config names" in flag.stderr and "RECONCILE_CONFIG" not in flag.stderr
    env = cli("status", env={"RECONCILE_CONFIG": str(tmp_path / "nope.toml")})
    assert env.returncode == 2 and "RECONCILE_CONFIG names" in env.stderr


def test_json_logs_are_json_only_with_the_run_s_fields(make_sandbox, tmp_path):
    server = make_sandbox(numbers=40)
    env = {"RECONCILE_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}", "TRUEDY_BASE_URL": server.url,
           "TRUEDY_API_KEY": SANDBOX_API_KEY, "RECONCILE_REPORTS_DIR": str(tmp_path / "reports")}
    upgrade = cli("--log-format", "json", "db", "upgrade", env=env)
    night = cli("--log-format", "json", "run", "nightly", "--trigger", "cron", "--as-of",
                server.account.now.strftime("%Y-%m-%dT%H:%M:%SZ"), env=env)
    assert upgrade.returncode == 0 and night.returncode == 0, night.stderr
    lines = [line for out in (upgrade, night) for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line parses: no plain text mixed in
    assert not any(e["logger"].startswith(("alembic", "apscheduler")) for e in entries), "third-party chatter"
    finished = [e for e in entries if e.get("phase") == "finished"]
    assert len(finished) == 1, "the summary once"
    (summary,) = finished
    assert summary["job"] == "nightly" and summary["trigger"] == "cron" and summary["status"] == "succeeded"
    assert isinstance(summary["run_id"], int) and summary["slot"] and summary["duration_s"] >= 0
    assert summary["counts"]["numbers"] > 0 and "calls_added" in summary["counts"]
    assert "nightly report as of" in summary["message"]
    started = next(e for e in entries if e.get("phase") == "started")
    assert started["run_id"] == summary["run_id"]
    night_entries = [json.loads(line) for line in night.stderr.splitlines() if line.strip()]
    assert night.stdout == "" and all(e.get("run_id") == summary["run_id"] for e in night_entries), \
        "every line of the run carries its fields, from every thread"


def test_a_failure_in_json_is_a_json_line(tmp_path):
    env = {"RECONCILE_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}", "TRUEDY_API_KEY": ""}
    cli("db", "upgrade", env=env)
    failed = cli("--log-format", "json", "sync", env=env)
    assert failed.returncode == 2
    (line,) = failed.stderr.strip().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "error" and entry["exit_code"] == 2 and "TRUEDY_API_KEY is not set" in entry["message"]


class Done:
    def line(self):
        return "all done"

    def counts(self):
        return {"numbers": 1}

    def raise_for_failures(self):
        pass


def test_the_scheduler_logs_each_summary_once(store, caplog):
    settings = load_settings(environ={})
    now = dt.datetime(2026, 11, 27, 2, 30, tzinfo=dt.UTC)
    execute = functools.partial(execute_job, jobs={"nightly": lambda s, e, c: Done()})
    scheduler = JobScheduler(settings, store, clock=lambda: now, execute=execute)
    with caplog.at_level(logging.INFO):
        scheduler.fire("nightly")
    assert [r.getMessage() for r in caplog.records].count("nightly: succeeded: all done") == 1
    assert sum("all done" in r.getMessage() for r in caplog.records) == 1


def test_a_manual_run_is_recorded_at_its_own_time_under_no_slot(store):
    settings = load_settings(environ={})
    now = dt.datetime(2026, 11, 27, 15, 4, tzinfo=dt.UTC)
    execute_job(settings, "nightly", "manual", clock=lambda: now, engine=store,
                jobs={"nightly": lambda s, e, c: Done()})
    (run,) = history.recent(store, "nightly")
    assert (run.trigger, run.slot, run.started_at) == ("manual", None, now)
    execute_job(settings, "nightly", "cron", clock=lambda: now, engine=store,
                jobs={"nightly": lambda s, e, c: Done()})
    assert history.recent(store, "nightly")[0].slot == "2026-11-27T02:30", "cron runs belong to their slot"
