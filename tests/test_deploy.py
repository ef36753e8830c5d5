"""deploy/ works as shipped: each crontab line, run the way cron runs it, hands the job its environment
and its exit code; the systemd units verify and their timers fire every day, DST nights included."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
ENV_FILE = "/etc/reconcile/reconcile.env"
JOBS = ("nightly", "cleanup", "monthly")


def crontab() -> tuple[dict[str, str], list[str]]:
    """The crontab's variable lines and the commands of its job lines (after the five time fields)."""
    variables, commands = {}, []
    for line in (DEPLOY / "crontab").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if match := re.fullmatch(r"([A-Z_]+)=(.*)", line):
            variables[match[1]] = match[2]
            continue
        fields = line.split(None, 5)
        assert len(fields) == 6, f"not a cron job line: {line!r}"
        commands.append(fields[5])
    return variables, commands


@pytest.fixture
def stub(tmp_path):
    """A `reconcile` that records its arguments and environment, then fails with exit 3."""
    folder = tmp_path / "bin"
    folder.mkdir()
    record = tmp_path / "record"
    (folder / "reconcile").write_text(f'#!/bin/sh\necho "$@" > {record}.args\nenv > {record}.env\nexit 3\n')
    (folder / "reconcile").chmod(0o755)
    shutil.copy(DEPLOY / "reconcile.env", tmp_path / "reconcile.env")
    return folder, record, tmp_path / "reconcile.env"


def run_as_cron(command: str, variables: dict[str, str], folder: Path, env_file: Path) -> subprocess.CompletedProcess:
    """The command as cron runs it: a bare environment (the crontab's variables, with the stub first on
    PATH) and /bin/sh -c."""
    environment = {**variables, "PATH": f"{folder}:/usr/bin:/bin"}
    assignments = [f"{name}={value}" for name, value in environment.items()]
    return subprocess.run(["env", "-i", *assignments, "/bin/sh", "-c", command.replace(ENV_FILE, str(env_file))],
                          capture_output=True, text=True, timeout=30)


def recorded_env(record: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in Path(f"{record}.env").read_text().splitlines() if "=" in line)


def test_every_job_has_a_crontab_line_and_no_pipe_hides_its_exit_code():
    variables, commands = crontab()
    assert variables.get("SHELL") == "/bin/sh" and variables.get("CRON_TZ") == "UTC"
    jobs = [re.search(r"\brun (\w+)", command)[1] for command in commands]
    assert sorted(jobs) == sorted(JOBS)
    assert all("|" not in command for command in commands), "a pipe reports its last command's status"


@pytest.mark.parametrize("job", JOBS)
def test_a_crontab_line_hands_the_job_the_key_and_returns_its_exit_code(stub, job):
    folder, record, env_file = stub
    variables, commands = crontab()
    command = next(c for c in commands if f"run {job} " in c)
    done = run_as_cron(command, variables, folder, env_file)
    assert done.returncode == 3, done.stderr
    assert Path(f"{record}.args").read_text().split() == ["--log-format", "json", "run", job, "--trigger", "cron"]
    seen = recorded_env(record)
    assert seen["TRUEDY_API_KEY"] == "replace-with-the-truedy-api-key"
    assert seen["RECONCILE_CONFIG"] == "/etc/reconcile/reconcile.toml"
    assert seen["RECONCILE_DATABASE_URL"].startswith("sqlite:////var/lib/reconcile/")


def test_without_set_a_the_key_would_not_arrive(stub):
    """The failure the crontab guards against: a sourced NAME=value line is not exported under /bin/sh."""
    folder, record, env_file = stub
    variables, commands = crontab()
    done = run_as_cron(commands[0].replace("set -a && ", ""), variables, folder, env_file)
    assert done.returncode == 3
    assert "TRUEDY_API_KEY" not in recorded_env(record)


def test_the_sample_environment_file_reads_the_same_for_systemd_and_sh():
    lines = [line for line in (DEPLOY / "reconcile.env").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    for line in lines:
        assert re.fullmatch(r"[A-Z_]+=[^\s'\"$`\\]*", line), f"not plain NAME=value: {line!r}"
    names = {line.split("=", 1)[0] for line in lines}
    assert {"TRUEDY_API_KEY", "RECONCILE_CONFIG", "RECONCILE_DATABASE_URL", "RECONCILE_REPORTS_DIR"} <= names


def test_every_unit_reads_the_same_environment_file_and_every_timer_is_utc():
    for unit in DEPLOY.glob("*.service"):
        assert f"EnvironmentFile={ENV_FILE}" in unit.read_text(), unit.name
    for job in JOBS:
        timer = (DEPLOY / f"reconcile-{job}.timer").read_text()
        assert f"Unit=reconcile@{job}.service" in timer
        assert re.search(r"^OnCalendar=.* UTC$", timer, re.M), f"{job}: not a UTC slot"


needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed: the units are not verified here")


@needs_systemd
def test_the_units_verify(tmp_path, stub):
    folder, _, env_file = stub
    for unit in [*DEPLOY.glob("*.service"), *DEPLOY.glob("*.timer")]:
        text = unit.read_text().replace("/opt/reconcile/venv/bin/reconcile", str(folder / "reconcile"))
        (tmp_path / unit.name).write_text(text.replace(ENV_FILE, str(env_file)))
    names = [f"reconcile@{job}.service" for job in JOBS] + [f"reconcile-{job}.timer" for job in JOBS]
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *names, "reconcile-scheduler.service"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@needs_systemd
def test_the_nightly_timer_fires_on_the_spring_forward_night():
    calendar = re.search(r"^OnCalendar=(.*)$", (DEPLOY / "reconcile-nightly.timer").read_text(), re.M)[1]
    done = subprocess.run(["systemd-analyze", "calendar", "--iterations=3", "--base-time=2026-03-28 12:00 UTC",
                           calendar], capture_output=True, text=True, timeout=30, env={"TZ": "Europe/Berlin"})
    assert done.returncode == 0, done.stderr
    assert "2026-03-29" in done.stdout and "2026-03-30" in done.stdout


def test_the_cron_slots_are_the_schedule_that_status_checks():
    import tomllib

    schedule = tomllib.loads((ROOT / "config" / "example.toml").read_text())["schedule"]
    assert schedule["timezone"] == "UTC"
    slots = {}
    for line in (DEPLOY / "crontab").read_text().splitlines():
        if not line.startswith("#") and (match := re.match(r"^((?:\S+\s+){4}\S+)\s+.*\brun (\w+)\b", line)):
            slots[match[2]] = " ".join(match[1].split())
    assert slots == {job: schedule[job] for job in JOBS}
