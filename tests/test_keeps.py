"""The keep list: kept numbers are not flagged while the keep is in force; every change is history."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconcile.config import SANDBOX_API_KEY, load_settings
from reconcile.errors import ConfigError
from reconcile.jobs.keep import keep_lines, keep_number, unkeep_number
from reconcile.review.nightly import evaluate_run
from reconcile.store import keeps as keep_store
from reconcile.sync import SyncOptions, run_sync

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def synced(make_sandbox, make_client, store):
    server = make_sandbox(numbers=120)
    run_sync(make_client(server), store, clock=lambda: server.account.now, options=SyncOptions(call_slices=1))
    return server, store


def flagged_ids(settings, store) -> set[str]:
    return set(evaluate_run(settings, store, record_history=False).result.flagged["number_id"])


def test_a_kept_number_is_not_flagged_until_its_keep_ends(synced):
    server, store = synced
    settings = load_settings(environ={})
    now = server.account.now
    before = flagged_ids(settings, store)
    number_id = sorted(before)[0]
    phone = next(n.phone_number for n in server.account.numbers if n.id == number_id)
    line = keep_number(store, phone, "emergency line for the Lyon office", "alice", now, None)
    assert line.startswith(f"kept {phone} ({number_id})") and "emergency line" in line
    assert number_id not in flagged_ids(settings, store) and before - {number_id} == flagged_ids(settings, store)
    listed = keep_lines(settings, store, now)
    assert any(number_id in entry and "kept by alice" in entry and "emergency line" in entry for entry in listed)
    assert "is kept no more" in unkeep_number(store, number_id, "office closed", "bob", now + dt.timedelta(hours=1))
    assert number_id in flagged_ids(settings, store)
    (ended,) = keep_store.listing(store, history=True)
    assert (ended.kept_by, ended.ended_by, ended.ended_reason) == ("alice", "bob", "office closed")
    assert keep_store.listing(store, now=now + dt.timedelta(hours=2)) == []


def test_a_keep_ends_after_its_last_day_and_config_protection_is_listed(synced):
    server, store = synced
    now = server.account.now
    number_id = sorted(flagged_ids(load_settings(environ={}), store))[0]
    keep_number(store, number_id, "campaign until Friday", "carol", now, now.date() + dt.timedelta(days=2))
    with store.connect() as connection:
        assert number_id in keep_store.kept_ids(connection, now + dt.timedelta(days=2))
        assert number_id not in keep_store.kept_ids(connection, now + dt.timedelta(days=3)), "the day after: over"
    base = load_settings(environ={})
    settings = dataclasses.replace(base, flags=dataclasses.replace(base.flags, protect_number_ids=frozenset({"num_X"}),
                                                                   protect_label_pattern="^KEEP"))
    listed = keep_lines(settings, store, now)
    assert "num_X: kept by config (flags.protect_number_ids)" in listed
    assert any("kept by config (flags.protect_label_pattern)" in entry for entry in listed)


def test_bad_keeps_are_refused_with_a_clear_line(synced):
    server, store = synced
    now = server.account.now
    with pytest.raises(ConfigError, match="no stored number is '\\+19999999999'"):
        keep_number(store, "+19999999999", "x", "alice", now, None)
    number_id = server.account.numbers[0].id
    with pytest.raises(ConfigError, match="--reason"):
        keep_number(store, number_id, "  ", "alice", now, None)
    with pytest.raises(ConfigError, match="that day has passed"):
        keep_number(store, number_id, "x", "alice", now, now.date() - dt.timedelta(days=1))
    with pytest.raises(ConfigError, match="is not kept"):
        unkeep_number(store, number_id, "x", "alice", now)


def test_keep_from_the_command_line(synced, database_url):
    server, store = synced
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "TRUEDY_"))}
    env.update(RECONCILE_DATABASE_URL=database_url, TRUEDY_BASE_URL=server.url, TRUEDY_API_KEY=SANDBOX_API_KEY)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "reconcile.jobs.cli", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    number = server.account.numbers[0]
    kept = cli("keep", number.phone_number, "--reason", "front desk", "--by", "dana", "--until", "2099-12-31")
    assert kept.returncode == 0, kept.stderr
    listed = cli("keep", "--list")
    assert f"{number.phone_number} {number.id}: kept by dana" in listed.stdout and "until 2099-12-31" in listed.stdout
    assert cli("keep", "nope").returncode == 2
    assert cli("unkeep", number.id, "--by", "dana").returncode == 0
    assert "[ended" in cli("keep", "--list", "--history").stdout
