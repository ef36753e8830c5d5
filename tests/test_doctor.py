"""`reconcile doctor` tells a healthy install from a broken one, against real parts on loopback."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from reconcile.config import SANDBOX_API_KEY
from reconcile.store import heartbeats
from reconcile.store.database import open_engine
from tests.test_cleanup import smtp, tls  # noqa: F401 - fixtures: a STARTTLS SMTP server with a login

ROOT = Path(__file__).resolve().parent.parent


def doctor(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "TRUEDY_"))}
    return subprocess.run([sys.executable, "-m", "reconcile.jobs.cli", "doctor"], cwd=cwd, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def install(tmp_path: Path, server, mailbox, **changes: str) -> dict[str, str]:
    config = tmp_path / "site.toml"
    config.write_text(
        "[truedy]\nmax_attempts = 1\n"
        f'[mail]\nsmtp_host = "127.0.0.1"\nsmtp_port = {mailbox.port}\nsmtp_security = "starttls"\n'
        f'smtp_username = "reconcile"\nsmtp_ca_file = "{mailbox.ca_file}"\nsmtp_timeout_s = 5.0\n')
    env = {"RECONCILE_CONFIG": str(config), "RECONCILE_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
           "RECONCILE_REPORTS_DIR": str(tmp_path / "reports"), "TRUEDY_BASE_URL": server.url,
           "TRUEDY_API_KEY": SANDBOX_API_KEY, "RECONCILE_SMTP_PASSWORD": "s3cret-pass", **changes}
    upgrade = subprocess.run([sys.executable, "-m", "reconcile.jobs.cli", "db", "upgrade"], cwd=ROOT,
                             env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    return env


def verdicts(out: str) -> dict[str, str]:
    return {line.split()[1]: line.split()[0] for line in out.splitlines() if line.startswith(("ok", "FAIL"))}


def test_a_healthy_install_passes_every_check(make_sandbox, smtp, tmp_path):  # noqa: F811
    env = install(tmp_path, make_sandbox(numbers=10), smtp)
    done = doctor(env, tmp_path)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert verdicts(done.stdout) == {"config": "ok", "database": "ok", "api": "ok", "mail": "ok", "reports": "ok",
                                     "scheduler": "ok"}
    assert "logged in as 'reconcile'" in done.stdout and smtp.messages == [], "a login, no message"
    assert "doctor: all 6 checks passed" in done.stdout
    assert SANDBOX_API_KEY not in done.stdout and "s3cret-pass" not in done.stdout


def test_a_refused_key_and_a_wrong_password_fail_with_the_upstream_code(make_sandbox, smtp, tmp_path):  # noqa: F811
    env = install(tmp_path, make_sandbox(numbers=10), smtp, TRUEDY_API_KEY="wrong-key",
                  RECONCILE_SMTP_PASSWORD="wrong-pass")
    done = doctor(env, tmp_path)
    assert done.returncode == 3, done.stdout
    assert verdicts(done.stdout)["api"] == "FAIL" and "refused the API key" in done.stdout
    assert verdicts(done.stdout)["mail"] == "FAIL" and "refused the login" in done.stdout
    assert "wrong-key" not in done.stdout and "wrong-pass" not in done.stdout


def test_an_old_schema_and_a_stopped_scheduler_are_named(make_sandbox, smtp, tmp_path):  # noqa: F811
    env = install(tmp_path, make_sandbox(numbers=10), smtp)
    engine = open_engine(env["RECONCILE_DATABASE_URL"])
    heartbeats.beat(engine, heartbeats.SCHEDULER, dt.datetime.now(dt.UTC) - dt.timedelta(hours=2), "host pid 1")
    engine.dispose()
    stopped = doctor(env, tmp_path)
    assert stopped.returncode == 7 and verdicts(stopped.stdout)["scheduler"] == "FAIL", stopped.stdout
    assert "last seen 2 h ago" in stopped.stdout
    fresh = doctor({**env, "RECONCILE_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}, tmp_path)
    assert fresh.returncode == 4 and "reconcile db upgrade" in fresh.stdout


def test_an_unwritable_reports_folder_is_a_configuration_failure(make_sandbox, smtp, tmp_path):  # noqa: F811
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    env = install(tmp_path, make_sandbox(numbers=10), smtp, RECONCILE_REPORTS_DIR=str(blocker / "reports"))
    done = doctor(env, tmp_path)
    assert done.returncode == 2 and verdicts(done.stdout)["reports"] == "FAIL", done.stdout
