"""The command line as people use it: exit codes, one-line errors, docs for every command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click

from reconcile.clock import format_timestamp
from reconcile.config import SANDBOX_API_KEY
from reconcile.jobs.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def reconcile(*args, env=None, cwd=ROOT):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "TRUEDY_"))}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "reconcile.jobs.cli", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=180)


def command_paths(group: click.Group, prefix: str = "reconcile") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths += command_paths(command, path)
        else:
            paths.append(path)
    return paths


def test_every_command_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for path in command_paths(cli):
        assert f"`{path}" in readme, f"README.md does not document `{path}`"


def test_help_lists_the_commands():
    result = reconcile("--help")
    assert result.returncode == 0
    for name in ("sync", "report", "run", "demo", "db", "sandbox"):
        assert re.search(rf"^\s+{name}\b", result.stdout, re.M)


def test_a_bad_config_exits_2_naming_file_and_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[flags]\nidle_days = 3\n")
    result = reconcile("sync", env={"RECONCILE_CONFIG": str(config)})
    assert result.returncode == 2
    assert result.stderr.strip() == (f"reconcile: {config}: unknown key flags.idle_days; "
                                     "did you mean 'idle_days_threshold'?")


def test_a_bad_as_of_exits_2(tmp_path):
    result = reconcile("report", "nightly", "--as-of", "yesterday",
                       env={"RECONCILE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert result.returncode == 2 and "--as-of" in result.stderr


def test_a_missing_api_key_exits_2(tmp_path):
    env = {"RECONCILE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    assert reconcile("db", "upgrade", env=env).returncode == 0
    result = reconcile("sync", env=env)
    assert result.returncode == 2 and "TRUEDY_API_KEY is not set" in result.stderr


def test_run_nightly_then_report_as_of_from_the_command_line(make_sandbox, tmp_path):
    server = make_sandbox(numbers=120)
    env = {"RECONCILE_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}", "TRUEDY_BASE_URL": server.url,
           "TRUEDY_API_KEY": SANDBOX_API_KEY, "RECONCILE_REPORTS_DIR": str(tmp_path / "reports")}
    assert reconcile("db", "upgrade", env=env).returncode == 0
    as_of = format_timestamp(server.account.now)
    result = reconcile("run", "nightly", "--as-of", as_of, env=env)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "reports" / f"nightly-{as_of[:10]}"
    assert {p.name for p in folder.iterdir()} == {"nightly.html", "flagged.csv", "inventory.csv", "flagged.xlsx"}
    assert SANDBOX_API_KEY not in result.stdout + result.stderr
    later = reconcile("report", "nightly", "--as-of", as_of[:10], "--out", str(tmp_path / "later"), env=env)
    assert later.returncode == 0, later.stderr
    assert (tmp_path / "later" / "flagged.csv").exists()


def test_report_monthly_and_run_monthly_from_the_command_line(make_sandbox, tmp_path):
    server = make_sandbox(numbers=120)
    env = {"RECONCILE_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}", "TRUEDY_BASE_URL": server.url,
           "TRUEDY_API_KEY": SANDBOX_API_KEY, "RECONCILE_REPORTS_DIR": str(tmp_path / "reports")}
    assert reconcile("db", "upgrade", env=env).returncode == 0
    bad = reconcile("report", "monthly", "--period", "2026-13", env=env)
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    as_of = format_timestamp(server.account.now)
    assert reconcile("sync", "--as-of", as_of, env=env).returncode == 0
    result = reconcile("report", "monthly", "--period", "2026-10", env=env)
    assert result.returncode == 0, result.stderr
    assert "monthly review of 2026-10" in result.stdout and "invoices synced" in result.stdout
    folder = tmp_path / "reports" / "monthly-2026-10"
    assert {p.name for p in folder.iterdir()} == {"monthly.html", "reconciliation.csv", "focus.csv", "review.xlsx", "carrier_estimates.csv"}
    offline = reconcile("report", "monthly", "--period", "2026-10", "--offline", "--out", str(tmp_path / "o"),
                        env={**env, "TRUEDY_BASE_URL": "http://127.0.0.1:9"})
    assert offline.returncode == 0, offline.stderr
    assert (tmp_path / "o" / "reconciliation.csv").read_bytes() == (folder / "reconciliation.csv").read_bytes()
    job = reconcile("run", "monthly", "--as-of", as_of, "--trigger", "cron", env=env)
    assert job.returncode == 0, job.stderr
    status = reconcile("status", "--json", env=env)
    runs = __import__("json").loads(status.stdout)["jobs"]["monthly"]["runs"]
    assert runs[0]["status"] == "succeeded" and "monthly review of 2026-10" in runs[0]["summary"]
