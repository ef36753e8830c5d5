"""What an operator sees when things go wrong: one line, the right exit code, no secret.

Secrets in every path (stderr, the store, `status --json`, the alert mail), database
trouble of every kind (always exit 4), configuration and flag edges (exit 2).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import select

from reconcile.clock import format_timestamp
from reconcile.config import SANDBOX_API_KEY
from reconcile.sandbox import app as sandbox_app
from reconcile.store.database import open_engine, upgrade
from reconcile.store.schema import sync_runs

ROOT = Path(__file__).resolve().parent.parent


def cli(args, database_url=None, server=None, api_key=SANDBOX_API_KEY, config=None, timeout=120, **extra_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "TRUEDY_"))}
    if database_url:
        env["RECONCILE_DATABASE_URL"] = database_url
    if server is not None:
        env["TRUEDY_BASE_URL"] = server.url
    env["TRUEDY_API_KEY"] = api_key
    if config:
        env["RECONCILE_CONFIG"] = str(config)
    env.setdefault("RECONCILE_REPORTS_DIR", tempfile.mkdtemp(prefix="reconcile-reports-"))
    env.update(extra_env)
    return subprocess.run([sys.executable, "-m", "reconcile.jobs.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("reconcile:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "SELECT" not in result.stderr
    return lines[0]


# -- 1. a key with a control character is a configuration error, at once -------------------


@pytest.mark.parametrize("key", ["sandbox-key\nnot-secret", "sandbox-kéy", "key with space"])
def test_a_key_with_a_control_or_non_ascii_character_exits_2_at_once(make_sandbox, store, database_url, key):
    server = make_sandbox(numbers=5)
    result = cli(["sync", "--as-of", "2026-11-20T00:00:00Z"], database_url, server, api_key=key, timeout=30)
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert "TRUEDY_API_KEY" in line and key not in line
    assert server.app.state.limiter.count == 0 and server.app.state.anonymous.count == 0, "no request was sent"


# -- 3. secrets stay secret ------------------------------------------------------------------


def test_an_upstream_that_echoes_the_key_never_shows_it_anywhere(make_sandbox, store, database_url, monkeypatch):
    key = "tk_live_0123456789abcdefghij"  # 28 characters: padded so the key crosses the 200-character cut
    server = make_sandbox(numbers=5, api_key=key)
    real_error = sandbox_app._error

    def echoing(status, code, message, headers=None):
        return real_error(418, "teapot", "x" * 185 + f" you sent Authorization: Bearer {key}", headers)

    real_page = sandbox_app._page

    def refusing_agents(request, items, render):
        if request.url.path == "/agents" and request.query_params.get("page_size") != "1":
            raise sandbox_app.SandboxError(418, "teapot", "x")
        return real_page(request, items, render)

    monkeypatch.setattr(sandbox_app, "_page", refusing_agents)
    monkeypatch.setattr(sandbox_app, "_error", echoing)
    result = cli(["run", "nightly", "--as-of", "2026-11-20T00:00:00Z"], database_url, server, api_key=key)
    assert result.returncode == 3, result.stderr
    status = cli(["status", "--json"], database_url, server, api_key=key)
    with store.connect() as c:
        stored = " ".join(str(e) for e in c.execute(select(sync_runs.c.error)).scalars())
    for text in (result.stderr, result.stdout, status.stdout, status.stderr, stored):
        for start in range(0, len(key) - 8):
            assert key[start:start + 8] not in text, f"a piece of the key leaked: {text[:400]}"
    assert "you sent Auth" in stored, "the upstream message is kept, redacted, then cut"


def test_a_database_password_in_the_query_string_is_redacted(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}?password=hunter2-secret"
    result = cli(["db", "upgrade"], url)
    assert "hunter2-secret" not in result.stdout + result.stderr
    bad = cli(["status"], "postgresql+psycopg://user@127.0.0.1:1/db?password=hunter2-secret&connect_timeout=2")
    assert bad.returncode == 4 and "hunter2-secret" not in bad.stdout + bad.stderr, bad.stderr


def test_upstream_text_cannot_forge_a_log_line(make_sandbox, store, database_url):
    server = make_sandbox(numbers=10)
    account = server.account
    original = account.number_json
    forged = "num_x\n2026-11-20T00:00:00 ERROR reconcile.sync: FORGED"
    account.number_json = lambda number: {**original(number), "id": forged, "status": "bogus"}
    result = cli(["sync", "--as-of", "2026-11-20T00:00:00Z"], database_url, server)
    assert result.returncode == 0, result.stderr
    assert "FORGED" in result.stderr, "the record is reported"
    assert not any(line.startswith("2026-11-20T00:00:00 ERROR") for line in result.stderr.splitlines())


# -- 4. database trouble is exit 4, one line ----------------------------------------------


@pytest.mark.parametrize("content", [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 50])
@pytest.mark.parametrize("command", [["status"], ["report", "nightly"], ["db", "upgrade"], ["run", "nightly"]])
def test_a_corrupt_sqlite_file_is_exit_4_with_one_line(tmp_path, content, command):
    path = tmp_path / "store.db"
    path.write_bytes(content)
    result = cli(command, f"sqlite:///{path}")
    assert result.returncode == 4, result.stderr
    assert "database" in one_line(result)


def test_a_truncated_sqlite_file_is_exit_4(tmp_path):
    path = tmp_path / "store.db"
    engine = open_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    path.write_bytes(path.read_bytes()[:3000])
    result = cli(["report", "nightly"], f"sqlite:///{path}")
    assert result.returncode == 4, result.stderr
    one_line(result)


def test_run_nightly_on_a_store_opened_read_only_is_exit_4(tmp_path, make_sandbox):
    # read-only through the URL: file permissions would not stop root, who runs CI
    path = tmp_path / "store.db"
    engine = open_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    result = cli(["run", "nightly", "--as-of", "2026-11-20T00:00:00Z"], url, make_sandbox(numbers=5))
    assert result.returncode == 4, result.stderr
    line = one_line(result)
    assert "readonly" in line or "read-only" in line


def test_a_store_locked_by_another_program_is_exit_4(tmp_path, make_sandbox):
    path = tmp_path / "store.db"
    engine = open_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")
    try:  # the job waits out the store's busy timeout (1 s here, from the URL), then gives up
        result = cli(["run", "nightly", "--as-of", "2026-11-20T00:00:00Z"], f"sqlite:///{path}?timeout=1",
                     make_sandbox(numbers=5), timeout=120)
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 4, result.stderr
    assert "locked" in one_line(result)


@pytest.mark.parametrize("url", ["postgresql+psycopg://u@127.0.0.1:99999/db", "postgresql://u@[bad/db",
                                 "sqlite:////proc/no/such/folder/x.db"])
def test_a_malformed_or_unusable_database_url_is_exit_4(url):
    result = cli(["status"], url)
    assert result.returncode == 4, result.stderr
    one_line(result)


def test_a_store_from_a_newer_reconcile_says_so(tmp_path):
    path = tmp_path / "store.db"
    engine = open_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.begin() as c:
        c.exec_driver_sql("UPDATE alembic_version SET version_num = '0999'")
    engine.dispose()
    for command in (["status"], ["db", "upgrade"], ["report", "nightly"]):
        result = cli(command, f"sqlite:///{path}")
        assert result.returncode == 4, result.stderr
        assert "newer reconcile" in one_line(result)


# -- 7. configuration and flag edges ----------------------------------------------------------


def test_a_config_file_that_is_not_utf8_is_exit_2_naming_the_file(tmp_path):
    config = tmp_path / "latin1.toml"
    config.write_bytes('[notify]\nowner_metadata_key = "propriétaire"\n'.encode("latin-1"))
    result = cli(["status"], f"sqlite:///{tmp_path / 's.db'}", config=config)
    assert result.returncode == 2 and str(config) in one_line(result) and "UTF-8" in result.stderr


def test_a_cron_expression_that_never_fires_is_exit_2_naming_the_key(tmp_path):
    config = tmp_path / "never.toml"
    config.write_text('[schedule]\nmonthly = "0 0 31 2 *"\n')
    result = cli(["status"], f"sqlite:///{tmp_path / 's.db'}", config=config)
    assert result.returncode == 2 and "schedule.monthly" in one_line(result) and "never fires" in result.stderr


@pytest.mark.parametrize("period", ["9999-12", "0001-01", "2026-13", "2026-1"])
def test_an_out_of_range_period_is_exit_2_naming_the_flag(tmp_path, period):
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(engine)
    engine.dispose()
    result = cli(["report", "monthly", "--period", period, "--offline"], f"sqlite:///{tmp_path / 's.db'}")
    assert result.returncode == 2 and "--period" in one_line(result)


@pytest.mark.parametrize("as_of", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_an_as_of_out_of_range_is_exit_2(tmp_path, as_of):
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(engine)
    engine.dispose()
    result = cli(["sync", "--as-of", as_of], f"sqlite:///{tmp_path / 's.db'}")
    assert result.returncode == 2 and "--as-of" in one_line(result)


def test_sync_as_of_ahead_of_upstream_or_before_the_newest_run_is_exit_2(make_sandbox, store, database_url):
    server = make_sandbox(numbers=10)
    now = server.account.now
    first = cli(["sync", "--as-of", now.isoformat()], database_url, server)
    assert first.returncode == 0, first.stderr
    ahead = cli(["sync", "--as-of", "2030-01-01T00:00:00Z"], database_url, server)
    assert ahead.returncode == 2 and "ahead of the Truedy API's own clock" in one_line(ahead)
    behind = cli(["sync", "--as-of", (now - dt.timedelta(days=1)).isoformat()], database_url, server)
    assert behind.returncode == 2 and "before the newest complete run" in one_line(behind)
    later = now + dt.timedelta(minutes=1)
    again = cli(["sync", "--as-of", later.isoformat()], database_url, server)
    assert again.returncode == 0, again.stderr
    status = json.loads(cli(["status", "--json"], database_url, server).stdout)
    assert status["last_complete_sync"]["as_of"] == format_timestamp(later), "the refused runs moved nothing"
