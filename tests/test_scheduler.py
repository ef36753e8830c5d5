"""Scheduling and run safety, with a controllable clock: nothing sleeps through real time."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import functools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from reconcile.config import SANDBOX_API_KEY, Secret, load_settings
from reconcile.errors import AuthError, LockedError
from reconcile.jobs.runner import execute_job
from reconcile.jobs.scheduler import JobScheduler
from reconcile.jobs.status import collect_status, format_status
from reconcile.sandbox import generate_account
from reconcile.schedule import fire_times, missed_slot, slot_key
from reconcile.store import jobs as history
from reconcile.store.lock import RunLock
from reconcile.store.schema import job_runs, number_versions, sync_runs

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.UTC


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize("expression", ["30 2 * * *", "0 1 * * *", "30 1 * * *"])
def test_a_daily_job_fires_exactly_once_per_local_day_across_both_dst_changes(zone, expression):
    times = fire_times(expression, zone, dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC))
    days = Counter(t.astimezone(ZoneInfo(zone)).date() for t in times)
    assert len(days) == 365 and set(days.values()) == {1}
    assert len({t.astimezone(UTC) for t in times}) == 365


@pytest.mark.parametrize(("zone", "spring", "autumn"), [
    ("Europe/Berlin", dt.date(2026, 3, 29), dt.date(2026, 10, 25)),
    ("America/New_York", dt.date(2026, 3, 8), dt.date(2026, 11, 1)),
])
def test_a_minutely_job_fires_once_per_wall_clock_minute_through_dst(zone, spring, autumn):
    tz = ZoneInfo(zone)
    for day, minutes in ((spring, 23 * 60), (autumn, 24 * 60)):
        start = dt.datetime.combine(day, dt.time(0, 0), tz).astimezone(UTC)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tz).astimezone(UTC)
        keys = [slot_key(t) for t in fire_times("* * * * *", zone, start, end)]
        assert keys == sorted(set(keys)), "wall-clock slots strictly increase: none twice"
        assert len(keys) == minutes


def test_a_missed_slot_is_found_once_and_only_within_the_grace():
    now = dt.datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    slot = missed_slot("30 2 * * *", "Europe/Berlin", now, set(), dt.timedelta(hours=20))
    assert slot_key(slot) == "2026-11-27T02:30"
    assert missed_slot("30 2 * * *", "Europe/Berlin", now, {"2026-11-27T02:30"}, dt.timedelta(hours=20)) is None
    assert missed_slot("30 2 * * *", "Europe/Berlin", now, set(), dt.timedelta(hours=2)) is None


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class Done:
    """A job outcome for the fake jobs: it did everything."""

    def line(self):
        return "ok"

    def counts(self):
        return {}

    def raise_for_failures(self):
        pass


DONE = Done()


def settings_for(tmp_path, **schedule):
    config = tmp_path / "site.toml"
    config.write_text('[notify]\nops_recipients = ["oncall@example.com"]\n'
                      '[schedule]\ntimezone = "Europe/Berlin"\nnightly = "30 2 * * *"\n')
    settings = load_settings(environ={}, config_path=config)
    mail = dataclasses.replace(settings.mail, outbox_dir=tmp_path / "outbox")
    return dataclasses.replace(settings, mail=mail, schedule=dataclasses.replace(settings.schedule, **schedule))


def test_a_slot_missed_during_downtime_runs_exactly_once_on_restart(store, tmp_path):
    settings = settings_for(tmp_path)
    calls = []
    fake = {"nightly": lambda s, e, c: calls.append(c()) or DONE, "cleanup": lambda s, e, c: DONE}
    clock = Clock(dt.datetime(2026, 11, 26, 1, 30, tzinfo=UTC))  # 02:30 Berlin: the scheduler fires
    execute = functools.partial(execute_job, jobs=fake)
    scheduler = JobScheduler(settings, store, clock=clock, execute=execute)
    scheduler.fire("nightly")
    assert len(calls) == 1
    clock.now = dt.datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # down over the 27th's 02:30 slot; restarted at 09:00
    first_start = JobScheduler(settings, store, clock=clock, execute=execute)
    assert first_start.catch_up() == ["2026-11-27T02:30"]
    second_start = JobScheduler(settings, store, clock=clock, execute=execute)
    assert second_start.catch_up() == []
    assert len(calls) == 2
    runs = history.recent(store, "nightly")
    assert [(r.slot, r.trigger, r.status) for r in runs] == [
        ("2026-11-27T02:30", "scheduler", "succeeded"), ("2026-11-26T02:30", "scheduler", "succeeded")]


def test_the_scheduler_never_runs_a_slot_twice(store, tmp_path):
    settings = settings_for(tmp_path)
    calls = []
    fake = {"nightly": lambda s, e, c: calls.append(1) or DONE}
    clock = Clock(dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # 02:30 CEST, the first of two 02:30s
    scheduler = JobScheduler(settings, store, clock=clock, execute=functools.partial(execute_job, jobs=fake))
    scheduler.fire("nightly")
    clock.now = dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, the same wall-clock slot
    scheduler.fire("nightly")
    assert calls == [1]


def test_cron_and_scheduler_never_overlap(store, database_url, tmp_path, make_sandbox):
    settings = settings_for(tmp_path)
    calls = []
    fake = {"nightly": lambda s, e, c: calls.append(1) or DONE}
    clock = Clock(dt.datetime(2026, 11, 27, 1, 30, tzinfo=UTC))
    with RunLock(store):  # a cron run holds the lock
        result = execute_job(settings, "nightly", "scheduler", clock=clock, engine=store, jobs=fake)
        assert (result.status, result.exit_code) == ("skipped", 5)
        with pytest.raises(LockedError):
            execute_job(settings, "nightly", "cron", clock=clock, engine=store, jobs=fake)
        server = make_sandbox(numbers=10)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "TRUEDY_"))}
        env.update(RECONCILE_DATABASE_URL=database_url, TRUEDY_BASE_URL=server.url, TRUEDY_API_KEY=SANDBOX_API_KEY)
        cron = subprocess.run([sys.executable, "-m", "reconcile.jobs.cli", "run", "nightly", "--trigger", "cron"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert cron.returncode == 5 and "holds the lock" in cron.stderr
    assert calls == []
    with store.connect() as c:
        rows = c.execute(select(job_runs.c.trigger, job_runs.c.status, job_runs.c.exit_code)).all()
    assert sorted(rows) == [("cron", "skipped", 5), ("cron", "skipped", 5), ("scheduler", "skipped", 5)]


def test_a_failing_job_records_its_failure_and_sends_one_alert(store, tmp_path, make_sandbox):
    server = make_sandbox(numbers=20)
    settings = settings_for(tmp_path)
    settings = dataclasses.replace(settings, truedy=dataclasses.replace(
        settings.truedy, base_url=server.url, api_key=Secret("tk_wrong_key_123"), max_attempts=2))
    clock = Clock(server.account.now)
    for _ in range(2):
        with pytest.raises(AuthError):
            execute_job(settings, "nightly", "cron", clock=clock, engine=store)
    runs = history.recent(store, "nightly")
    assert [(r.status, r.exit_code) for r in runs] == [("failed", 3), ("failed", 3)]
    assert "refused the API key" in runs[0].summary and "tk_wrong_key_123" not in runs[0].summary
    alerts = list((tmp_path / "outbox").glob("*.eml"))
    assert len(alerts) == 1, "one alert per job and slot"
    message = email.message_from_bytes(alerts[0].read_bytes(), policy=email.policy.default)
    assert message["To"] == "oncall@example.com" and message["Subject"] == "reconcile: the nightly job failed (exit 3)"
    body = message.get_body(("plain",)).get_content()
    assert "refused the API key" in body and "reconcile run nightly" in body and "tk_wrong_key_123" not in body
    report = collect_status(settings, store, now=clock())
    assert report["jobs"]["nightly"]["runs"][0]["status"] == "failed" and report["jobs"]["nightly"]["next_run"]
    assert "nightly  [30 2 * * *]" in format_status(report)


def test_sigterm_during_a_sync_leaves_the_store_as_it_was(store, database_url, make_sandbox):
    # the job runs on this machine's clock, so the sandbox's clock (and its Date header) must be now too
    account = generate_account(seed=7, numbers=400, start=dt.datetime.now(dt.UTC))
    account.follow_real_time()
    server = make_sandbox(account=account, latency_s=0.05)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "TRUEDY_"))}
    env.update(RECONCILE_DATABASE_URL=database_url, TRUEDY_BASE_URL=server.url, TRUEDY_API_KEY=SANDBOX_API_KEY)
    config = Path(env.get("TMPDIR", "/tmp")) / f"slow-{os.getpid()}.toml"
    config.write_text("[truedy]\npage_size = 5\nmax_concurrency = 1\n")
    env["RECONCILE_CONFIG"] = str(config)
    job = subprocess.Popen([sys.executable, "-m", "reconcile.jobs.cli", "run", "nightly", "--trigger", "cron"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with store.connect() as c:
                if c.execute(select(func.count()).select_from(sync_runs).where(sync_runs.c.status == "running")).scalar():
                    break
            time.sleep(0.05)
        time.sleep(0.5)  # well inside the listing
        job.send_signal(signal.SIGTERM)
        _, stderr = job.communicate(timeout=60)
    finally:
        config.unlink(missing_ok=True)
    assert job.returncode == 130, stderr
    with store.connect() as c:
        assert c.execute(select(func.count()).select_from(number_versions)).scalar() == 0
        assert c.execute(select(sync_runs.c.status)).scalars().all() == ["failed"]
        assert c.execute(select(job_runs.c.status, job_runs.c.exit_code)).all() == [("failed", 130)]


def test_sigterm_during_the_start_up_catch_up_starts_no_further_job(store, database_url, make_sandbox, tmp_path):
    account = generate_account(seed=7, numbers=300, start=dt.datetime.now(dt.UTC))
    account.follow_real_time()
    server = make_sandbox(account=account, latency_s=0.05)
    config = tmp_path / "catch-up.toml"
    config.write_text('[truedy]\npage_size = 5\nmax_concurrency = 1\n'
                      '[schedule]\ntimezone = "UTC"\nnightly = "* * * * *"\ncleanup = "* * * * *"\n'
                      'monthly = "* * * * *"\nstop_grace_s = 120.0\n'
                      f'[reports]\ndir = "{tmp_path / "reports"}"\n[mail]\noutbox_dir = "{tmp_path / "outbox"}"\n'
                      '[notify]\ndefault_recipients = ["ops@example.com"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "TRUEDY_"))}
    env.update(RECONCILE_DATABASE_URL=database_url, TRUEDY_BASE_URL=server.url, TRUEDY_API_KEY=SANDBOX_API_KEY,
               RECONCILE_CONFIG=str(config))
    scheduler = subprocess.Popen([sys.executable, "-m", "reconcile.jobs.cli", "scheduler"], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                 stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the catch-up's first job has started
        with store.connect() as c:
            if c.execute(select(func.count()).select_from(job_runs)).scalar():
                break
        time.sleep(0.05)
    scheduler.send_signal(signal.SIGTERM)
    _, stderr = scheduler.communicate(timeout=150)
    with store.connect() as c:
        started = c.execute(select(job_runs.c.job, job_runs.c.status)).all()
    assert [job for job, _ in started] == ["nightly"], stderr
    assert "signal 15: stopping" in stderr, "the signal arrived while the catch-up's first job ran"
    assert not list((tmp_path / "outbox").glob("*.eml")), "no digest went out after the signal"
