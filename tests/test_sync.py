"""`reconcile sync` on SQLite and PostgreSQL: atomic, idempotent, versioned, locked."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import orjson
import pytest
from sqlalchemy import func, select

from reconcile.clock import format_timestamp
from reconcile.config import SANDBOX_API_KEY
from reconcile.sandbox.model import to_epoch
from reconcile.store import readers
from reconcile.store.database import open_engine, upgrade
from reconcile.store.lock import RunLock
from reconcile.store.schema import agent_versions, number_versions, sync_runs
from reconcile.sync import SyncOptions, run_sync
from tests.storeview import store_state

ROOT = Path(__file__).resolve().parent.parent


def sync(server, engine, make_client, **client_options):
    client = make_client(server, calls_page_size=200, **client_options)
    return run_sync(client, engine, clock=lambda: server.account.now, options=SyncOptions(call_slices=2))


def cli(args, database_url, server, api_key=SANDBOX_API_KEY, timeout=120):
    env = dict(os.environ, RECONCILE_DATABASE_URL=database_url, TRUEDY_BASE_URL=server.url, TRUEDY_API_KEY=api_key)
    env.pop("RECONCILE_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "reconcile.jobs.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def visible_calls_between(account, after, before):
    t = account.calls
    mask = (t.started >= to_epoch(after)) & (t.started < to_epoch(before)) & (t.visible <= to_epoch(account.now))
    return {f"call_{i:010d}" for i in np.flatnonzero(mask)}


def test_first_sync_stores_the_account_exactly(make_sandbox, make_client, store):
    server = make_sandbox(numbers=300)
    account = server.account
    summary = sync(server, store, make_client)
    cutoff = account.now - dt.timedelta(days=400)
    expected = {n.id for n in account.numbers if n.status != "released" or n.released_at >= cutoff}
    state = store_state(store)
    assert {number_id for number_id, _ in state["open_numbers"]} == expected
    assert summary.versions_opened == len(expected) + len(account.agents)
    assert {c[0] for c in state["calls"]} == visible_calls_between(account, account.now - dt.timedelta(days=90), account.now)
    assert summary.calls_added == len(state["calls"])
    assert state["state"] == {("calls_watermark", format_timestamp(account.now)),
                              ("calls_covered_from", format_timestamp(account.now - dt.timedelta(days=90)))}
    with store.connect() as c:
        run = readers.latest_complete_run(c)
        assert run.id == summary.run_id and run.counts["calls_added"] == summary.calls_added
        inventory = readers.inventory_as_of(c, run.id, ("active", "pending"))
    truth = {n.id: n for n in account.numbers if n.status in ("active", "pending")}
    assert set(inventory["number_id"]) == set(truth)
    costs = dict(zip(inventory["number_id"], inventory["monthly_cost"], strict=True))
    for number_id, number in truth.items():
        assert costs[number_id] == number.monthly_cost
        assert costs[number_id] is None or isinstance(costs[number_id], Decimal)
    assert summary.line().startswith(f"sync run {summary.run_id} complete")


def test_a_rerun_on_identical_data_writes_nothing_new(make_sandbox, make_client, store):
    server = make_sandbox(numbers=200)
    sync(server, store, make_client)
    before = store_state(store)
    again = sync(server, store, make_client)
    assert (again.versions_opened, again.versions_closed, again.calls_added) == (0, 0, 0)
    assert store_state(store) == before


def one_change(store, run_id, table, key_column, key):
    with store.connect() as c:
        opened = c.execute(select(table.c[key_column]).where(table.c.valid_from_run == run_id)).scalars().all()
        closed = c.execute(select(table.c[key_column]).where(table.c.valid_to_run == run_id)).scalars().all()
    return opened, closed


@pytest.mark.parametrize("change", ["cost", "reassignment", "release", "label"])
def test_each_kind_of_number_change_opens_exactly_one_version(make_sandbox, make_client, store, change):
    server = make_sandbox(numbers=200)
    account = server.account
    sync(server, store, make_client)
    number = next(n for n in account.numbers if n.intent == "used" and n.status == "active" and n.is_truedy_managed)
    with account.lock:
        if change == "cost":
            number.cost_history.append((account.now, number.monthly_cost + Decimal("0.10")))
            number.touch()
        elif change == "reassignment":
            other = next(a for a in account.agents if a.status == "active" and a.id not in
                         {agent for agent, _ in number.assignments.values()})
            account.assign(number.id, other.id, sorted(number.assignments)[0])
        elif change == "release":
            account.release(number.id)
        else:
            number.label = "=renamed"
            number.touch()
        account._changed()
    summary = sync(server, store, make_client)
    assert (summary.versions_opened, summary.versions_closed) == (1, 1)
    assert one_change(store, summary.run_id, number_versions, "number_id", number.id) == ([number.id], [number.id])
    with store.connect() as c:
        history = readers.number_history(c, number.id)
    assert len(history) == 2 and history[0]["valid_to"] == history[1]["valid_from"] == account.now.replace(microsecond=0)


def test_an_archived_agent_opens_one_agent_version(make_sandbox, make_client, store):
    server = make_sandbox(numbers=200)
    account = server.account
    sync(server, store, make_client)
    agent = next(a for a in account.agents if a.status == "active")
    agent.status, agent.archived_at = "archived", account.now
    summary = sync(server, store, make_client)
    assert (summary.versions_opened, summary.versions_closed) == (1, 1)
    assert one_change(store, summary.run_id, agent_versions, "agent_id", agent.id) == ([agent.id], [agent.id])
    with store.connect() as c:
        agents = readers.agents_as_of(c, summary.run_id)
    assert agents.set_index("agent_id").loc[agent.id, "status"] == "archived"


def test_a_reacquired_phone_number_is_a_new_number(make_sandbox, make_client, store):
    server = make_sandbox(numbers=200)
    account = server.account
    sync(server, store, make_client)
    number = next(n for n in account.numbers if n.status == "active" and n.is_truedy_managed)
    account.release(number.id)
    account.offered[number.phone_number] = (number.country_code, number.phone_number_type)
    again = account.purchase(number.phone_number)
    summary = sync(server, store, make_client)
    assert (summary.versions_opened, summary.versions_closed) == (2, 1)
    with store.connect() as c:
        inventory = readers.inventory_as_of(c, summary.run_id)
    rows = inventory[inventory["phone_number"] == number.phone_number].set_index("number_id")
    assert rows.loc[number.id, "status"] == "released" and rows.loc[again.id, "status"] == "active"


def test_incremental_calls_use_the_watermark_with_overlap(make_sandbox, make_client, store):
    server = make_sandbox(numbers=300)
    account = server.account
    first = sync(server, store, make_client)
    account.advance(days=1)
    second = sync(server, store, make_client)
    ids = {c[0] for c in store_state(store)["calls"]}
    expected = visible_calls_between(account, first.as_of - dt.timedelta(days=90), account.now)
    assert ids == expected
    assert second.calls_added == len(expected) - first.calls_added > 0
    account.advance(hours=1)  # the calls of the night's last hour are published late
    late = visible_calls_between(account, first.as_of - dt.timedelta(days=90), account.now) - ids
    third = sync(server, store, make_client)
    assert {c[0] for c in store_state(store)["calls"]} == ids | late
    assert third.calls_added == len(late)


def test_a_number_missing_from_the_listing_is_closed_only_when_the_api_confirms(make_sandbox, make_client, store):
    server = make_sandbox(numbers=200)
    account = server.account
    sync(server, store, make_client)
    live = [n for n in account.numbers if n.status == "active"]
    hidden, gone = live[0], live[1]
    # the listing skips `hidden` (as page drift would) but GET still finds it active
    original = account.listing
    account.listing = lambda status: [n for n in original(status) if n.id not in (hidden.id, gone.id)]
    account._changed()
    del account.number_by_id[gone.id]  # `gone` vanished for good: GET answers 404
    summary = sync(server, store, make_client)
    assert summary.numbers_confirmed_gone == 1
    with store.connect() as c:
        inventory = readers.inventory_as_of(c, summary.run_id).set_index("number_id")
    assert inventory.loc[hidden.id, "status"] == "active"
    assert gone.id not in inventory.index
    assert (summary.versions_opened, summary.versions_closed) == (0, 1)


def test_page_drift_never_closes_a_live_number(make_sandbox, make_client, store):
    server = make_sandbox(numbers=500, seed=13)
    account = server.account
    sync(server, store, make_client)
    account.faults.churn_per_listing = 0.5
    summary = sync(server, store, make_client, page_size=10, max_concurrency=3)
    account.faults.churn_per_listing = 0
    with store.connect() as c:
        inventory = readers.inventory_as_of(c, summary.run_id).set_index("number_id")
    for number in account.numbers:
        if number.status in ("active", "pending") and number.id in inventory.index:
            assert inventory.loc[number.id, "status"] in ("active", "pending"), number.id
    live_then = {n.id for n in account.numbers if n.status in ("active", "pending")}
    assert live_then - set(inventory.index) <= {n.id for n in account.numbers if n.intent == "fresh"}


def test_a_malformed_record_lands_in_data_issues_and_the_run_completes(make_sandbox, make_client, store):
    server = make_sandbox(numbers=200)
    account = server.account
    sync(server, store, make_client)
    account.set_malformed(2)
    before = store_state(store)["open_numbers"]
    summary = sync(server, store, make_client)
    state = store_state(store)
    assert summary.data_issues == 2, "the calls' overlap window holds no malformed call"
    assert {i[1] for i in state["issues"] if i[0] == "number"} == account.malformed_number_ids
    assert state["open_numbers"] == before, "a malformed record keeps its last good version"
    with store.connect() as c:
        assert readers.latest_complete_run(c).id == summary.run_id


def test_malformed_calls_in_a_first_sync_are_data_issues(make_sandbox, make_client, store):
    server = make_sandbox(numbers=200)
    account = server.account
    account.set_malformed(3)
    started = account.calls.started
    in_window = {row for row in account.malformed_call_rows
                 if started[row] >= to_epoch(account.now - dt.timedelta(days=90))}
    summary = sync(server, store, make_client)
    state = store_state(store)
    assert {i[1] for i in state["issues"] if i[0] == "call"} == {f"call_{row:010d}" for row in in_window}
    assert summary.data_issues == 3 + len(in_window)
    assert not {n for n, _ in state["open_numbers"]} & account.malformed_number_ids


@pytest.mark.parametrize(("phase", "after"), [("listings", 0), ("listings", 1), ("calls", 1), ("calls", 1500)])
def test_kill_9_at_any_point_then_rerun_equals_one_clean_run(make_sandbox, make_client, store, database_url, tmp_path,
                                                             phase, after):
    server = make_sandbox(numbers=300)
    account = server.account
    as_of = format_timestamp(account.now)
    victim = subprocess.run([sys.executable, "-m", "tests.kill_helper", database_url, server.url, as_of, phase,
                             str(after)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert victim.returncode == -signal.SIGKILL, victim.stderr[-500:]
    assert store_state(store)["number_versions"] == [], "a killed run leaves no versions"
    assert store_state(store)["calls"] == set()
    rerun = sync(server, store, make_client)
    with store.connect() as c:
        statuses = dict(c.execute(select(sync_runs.c.id, sync_runs.c.status)).all())
    assert statuses == {rerun.run_id - 1: "abandoned", rerun.run_id: "complete"}
    reference = open_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    upgrade(reference)
    sync(server, reference, make_client)
    assert store_state(store) == store_state(reference)


def test_two_syncs_at_once_the_second_exits_5(make_sandbox, store, database_url):
    server = make_sandbox(numbers=20)
    with RunLock(store):
        result = cli(["sync"], database_url, server)
    assert result.returncode == 5, result.stderr
    assert "another reconcile run holds the lock" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_killed_lock_holder_never_leaves_the_lock_stuck(store, database_url):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time\nfrom reconcile.store.database import open_engine\n"
         "from reconcile.store.lock import RunLock\nheld = RunLock(open_engine(sys.argv[1])).acquire()\n"
         "print('held', flush=True)\ntime.sleep(60)", database_url],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(Exception, match="another reconcile run"):
        RunLock(store).acquire()
    holder.kill()
    holder.wait()
    holder.stdout.close()
    lock = None
    for _ in range(50):  # PostgreSQL notices the dead connection within moments
        try:
            lock = RunLock(store).acquire()
            break
        except Exception:
            import time
            time.sleep(0.1)
    assert lock is not None
    lock.release()


def test_a_refused_key_exits_3_and_leaves_the_store_as_it_was(make_sandbox, make_client, store, database_url):
    server = make_sandbox(numbers=50)
    sync(server, store, make_client)
    before = store_state(store)
    result = cli(["sync"], database_url, server, api_key="tk_live_definitely_wrong")
    assert result.returncode == 3
    assert "refused the API key" in result.stderr and "tk_live_definitely_wrong" not in result.stderr + result.stdout
    assert store_state(store) == before
    with store.connect() as c:
        assert c.execute(select(sync_runs.c.status).order_by(sync_runs.c.id.desc())).scalar() == "failed"


def test_sync_on_an_empty_database_says_to_upgrade(make_sandbox, database_url):
    server = make_sandbox(numbers=5)
    result = cli(["sync"], database_url, server)
    assert result.returncode == 4 and "run `reconcile db upgrade`" in result.stderr


def test_the_cli_sync_prints_one_summary_line(make_sandbox, store, database_url):
    server = make_sandbox(numbers=40)
    result = cli(["sync", "--as-of", format_timestamp(server.account.now)], database_url, server)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sync run 1 complete") and len(result.stdout.strip().splitlines()) == 1
    with store.connect() as c:
        assert c.execute(select(func.count()).select_from(number_versions)).scalar() > 0


def test_records_served_as_stored_are_not_parsed_again_and_a_new_field_changes_nothing(
        make_sandbox, make_client, store, monkeypatch):
    import reconcile.truedy.client as client_module

    server = make_sandbox(numbers=200)
    account = server.account
    sync(server, store, make_client)
    parsed: list[str] = []  # the records read: from their bytes (plain_number) or field by field (parse_number)
    real_parse, real_plain = client_module.parse_number, client_module.plain_number

    def counting_parse(raw):
        parsed.append(raw.get("id"))
        return real_parse(raw)

    def counting_plain(served):
        parsed.append(orjson.loads(bytes(served)).get("id"))
        return real_plain(served)

    monkeypatch.setattr(client_module, "parse_number", counting_parse)
    monkeypatch.setattr(client_module, "plain_number", counting_plain)
    before = store_state(store)
    again = sync(server, store, make_client)
    assert parsed == [] and again.versions_opened == again.versions_closed == 0
    assert again.numbers_seen == len({n for n, _ in before["open_numbers"]})

    relabelled, extended = [n for n in account.numbers if n.status == "active"][:2]
    relabelled.label = "renamed by a person"
    relabelled.touch()
    extended._json = {**extended.to_json(), "region": "new field the contract allows"}
    third = sync(server, store, make_client)
    assert sorted(set(parsed)) == sorted([relabelled.id, extended.id]), parsed  # only the two served differently
    assert third.versions_opened == third.versions_closed == 1     # the label; an unknown field is no change
    parsed.clear()
    sync(server, store, make_client)
    assert parsed == [], "the new field's record is recognised from then on"


@pytest.mark.parametrize("in_memory", [False, True])
def test_a_sqlite_file_s_staging_session_sorts_with_helpers_and_is_closed_not_pooled(tmp_path, in_memory):
    """On a SQLite file the staging's session sorts with helper threads (`PRAGMA threads`) and is closed when
    the staging ends (its temporary file goes whole, no page-by-page drop); a store in memory, which would
    go with its one session, keeps it. Either way the calls are stored."""
    from reconcile.store.schema import calls
    from reconcile.store.staging import CallStaging, sort_helpers
    from reconcile.store.writer import begin_run
    from reconcile.truedy.records import Call

    engine = open_engine("sqlite://" if in_memory else f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    at = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
    run = begin_run(engine, at, at)
    staged = [Call(f"call_{n}", "agt_1", "num_1", "inbound", None, None, at, at, 30, Decimal("0.01"), "USD")
              for n in range(3)]
    with engine.connect() as connection:
        with CallStaging(connection) as staging:
            staging.add_calls(staged, run)
            with connection.begin():
                assert staging.commit_into_calls() == 3
            threads = connection.exec_driver_sql("PRAGMA threads").scalar()
        assert connection.invalidated is not in_memory
    assert threads == (0 if in_memory else sort_helpers())
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(calls)).scalar() == 3
        tables = connection.exec_driver_sql("SELECT name FROM temp.sqlite_master WHERE type = 'table'").scalars().all()
        assert "calls_staging" not in tables
    engine.dispose()


@pytest.mark.parametrize("stored_first", [False, True])
def test_calls_staged_twice_are_stored_once_and_the_key_still_holds(store, stored_first):
    """Into an empty `calls` the keys and indexes are built after the rows (PostgreSQL drops its primary
    key too): a call staged twice is one row either way, and afterwards the key refuses a second copy."""
    import datetime as dt
    from decimal import Decimal

    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from reconcile.store.schema import calls
    from reconcile.store.staging import CallStaging
    from reconcile.store.writer import begin_run, insert_calls
    from reconcile.truedy.records import Call

    at = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
    run = begin_run(store, at, at)

    def call(n: int) -> Call:
        return Call(f"call_{n}", "agt_1", "num_1", "inbound", None, None, at + dt.timedelta(minutes=n),
                    at + dt.timedelta(minutes=n, seconds=30), 30, Decimal("0.01"), "USD")

    if stored_first:
        with store.begin() as connection:
            insert_calls(connection, [{"call_id": "call_0", "agent_id": "agt_1", "number_id": "num_1",
                                       "direction": "inbound", "from_number": None, "to_number": None,
                                       "started_at": at, "ended_at": at, "duration_seconds": 30,
                                       "cost_amount": Decimal("0.01"), "cost_currency": "USD", "sync_run_id": run}])
    with store.connect() as connection, CallStaging(connection) as staging:
        staging.add_calls([call(1), call(2), call(1)], run)
        staging.add_calls([call(2), call(0)], run)
        with connection.begin():
            moved = staging.commit_into_calls()
    assert moved == 2 if stored_first else moved == 3
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(calls)).scalar() == 3
    with pytest.raises(IntegrityError), store.begin() as connection:
        connection.execute(insert(calls).values(call_id="call_1", agent_id="agt_1", direction="inbound", started_at=at,
                                                ended_at=at, duration_seconds=1, cost_amount=Decimal(0),
                                                cost_currency="USD", sync_run_id=run))
