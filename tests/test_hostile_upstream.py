"""An upstream that misbehaves: every run ends in bounded time, and no record poisons the store.

Each fault is served over real HTTP: the sandbox with one of its answers bent, or a raw
socket server that drips. SQLite and PostgreSQL where the store is involved.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from reconcile.errors import ContractError, RetriesExhausted
from reconcile.sandbox import app as sandbox_app
from reconcile.store import readers
from reconcile.store.schema import data_issues, number_versions, sync_runs
from reconcile.sync import SyncOptions, run_sync
from reconcile.truedy import RetryPolicy, TruedyClient, make_http_client
from reconcile.truedy.pacing import RatePacer
from tests.storeview import store_state


def sync(server, store, make_client, **options):
    client = make_client(server, calls_page_size=200, **options)
    return run_sync(client, store, clock=lambda: server.account.now, options=SyncOptions(call_slices=1))


def bend_numbers(account, bend):
    """Serve each number through `bend(number_id, body) -> body` (the account itself stays right)."""
    original = account.number_json
    account.number_json = lambda number: bend(number.id, original(number))


def some_live_ids(account, count):
    return [n.id for n in account.listing(None)[:count]]


# -- 1. every run ends in bounded time ----------------------------------------------------


def test_a_huge_ratelimit_reset_is_capped_and_the_deadline_fails_the_run_at_once(make_sandbox, monkeypatch):
    server = make_sandbox(numbers=30)
    real_admit = sandbox_app.RateLimiter.admit

    def exhausted(self, limit):
        admitted, headers = real_admit(self, limit)
        headers.update({"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "999999999"})
        return admitted, headers

    monkeypatch.setattr(sandbox_app.RateLimiter, "admit", exhausted)
    pacer = RatePacer(max_wait_s=60)
    http = make_http_client(server.url, "sandbox-key-not-secret", timeout_s=5)
    client = TruedyClient(http, policy=RetryPolicy(retry_after_cap_s=60), deadline_s=3, pacer=pacer, page_size=10)
    started = time.monotonic()
    with pytest.raises(RetriesExhausted, match="deadline"):
        client.list_numbers()
    client.close()
    assert time.monotonic() - started < 2, "the wait that would pass the deadline is refused, not slept"
    assert pacer.waited_s < 1


def test_the_pacer_caps_a_wait_the_headers_ask_for():
    now = [100.0]
    slept = []
    pacer = RatePacer(monotonic=lambda: now[0], sleep=slept.append, max_wait_s=7)
    pacer.observe({"x-ratelimit-limit": "20", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "999999999"})
    pacer.acquire()
    assert slept == [pytest.approx(7)]
    from reconcile.truedy.pacing import PacingPastDeadline

    pacer.observe({"x-ratelimit-limit": "20", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "5"})
    with pytest.raises(PacingPastDeadline):
        pacer.acquire(deadline=now[0] + 1)


class DrippingServer:
    """Answers every request one byte at a time, `interval` seconds apart: never a read timeout."""

    def __init__(self, interval: float = 0.3) -> None:
        self.interval = interval
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(connection,), daemon=True).start()

    def _drip(self, connection):
        body = b'{"data": [], "meta": {"page": 1, "page_size": 10, "total_pages": 0, "total_results": 0}}'
        answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        with connection:
            connection.recv(65536)
            for byte in answer:
                if self.stop.is_set():
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(self.interval)

    def close(self):
        self.stop.set()
        self.sock.close()


def test_a_dripping_answer_is_cut_at_the_timeout_for_the_whole_answer():
    server = DrippingServer(interval=0.3)  # the whole answer would take about 50 s; each read only 0.3 s
    try:
        http = make_http_client(server.url, "sandbox-key-not-secret", timeout_s=1.5)
        client = TruedyClient(http, policy=RetryPolicy(max_attempts=2, backoff_base_s=0.01, backoff_cap_s=0.01))
        started = time.monotonic()
        with pytest.raises(RetriesExhausted, match="timed out"):
            client.list_agents()
        client.close()
        assert time.monotonic() - started < 6
    finally:
        server.close()


def test_a_calls_cursor_that_loops_fails_at_once_and_commits_nothing(make_sandbox, make_client, store):
    server = make_sandbox(numbers=40)
    sync(server, store, make_client)
    before = store_state(store)
    account = server.account
    account.advance(days=1)
    loop = {None: "A", "A": "B", "B": "A"}
    account.calls_page = lambda after, before_, cursor, limit: ([], loop[cursor])
    started = time.monotonic()
    with pytest.raises(ContractError, match="cursor it had handed out before"):
        sync(server, store, make_client)
    assert time.monotonic() - started < 10
    assert store_state(store) == before, "nothing committed, the calls watermark unchanged"
    with store.connect() as c:
        assert c.execute(select(sync_runs.c.status).order_by(sync_runs.c.id.desc())).scalar() == "failed"


@pytest.mark.parametrize("meta", [{"total_pages": 10**9}, {"total_results": 10**12, "total_pages": 10**10},
                                  {"total_pages": -1}, {"total_pages": "many"}])
def test_absurd_page_counts_are_a_contract_error_not_a_memory_error(make_sandbox, make_client, monkeypatch, meta):
    server = make_sandbox(numbers=20)
    real_page = sandbox_app._page

    def lying(request, items, render):
        body = real_page(request, items, render)
        body["meta"].update(meta)
        return body

    monkeypatch.setattr(sandbox_app, "_page", lying)
    with pytest.raises(ContractError, match="broken|whole numbers"):
        make_client(server).list_numbers()


def test_a_page_past_the_end_is_empty_and_ends_the_listing(make_sandbox, make_client):
    server = make_sandbox(numbers=25)
    client = make_client(server, page_size=10)
    past = client.get("telephony/numbers", {"page": 99, "page_size": 10})
    assert past["data"] == [] and past["meta"]["total_results"] == 25
    assert len(client.list_numbers().records) == len(server.account.listing(None))


# -- 2. no single value poisons the store ---------------------------------------------------


BAD_VALUES = {
    "price beyond any plausible amount": lambda body: {**body, "cost_information": {
        **body["cost_information"], "monthly_cost": "99999999999.99"}},
    "price in exponent form": lambda body: {**body, "cost_information": {**body["cost_information"],
                                                                        "monthly_cost": "1e3"}},
    "a currency that does not exist": lambda body: {**body, "cost_information": {**body["cost_information"],
                                                                                "currency": "XYZ"}},
    "a phone number with a trailing newline": lambda body: {**body, "phone_number": body["phone_number"] + "\n"},
}


@pytest.mark.parametrize("fault", list(BAD_VALUES))
def test_a_bad_value_is_a_data_issue_and_the_previous_version_is_kept(make_sandbox, make_client, store, fault):
    server = make_sandbox(numbers=40)
    account = server.account
    sync(server, store, make_client)
    victim = next(n for n in account.listing(None) if n.upfront_cost is not None).id
    with store.connect() as c:
        kept = c.execute(select(number_versions.c.row_hash).where(number_versions.c.number_id == victim,
                                                                  number_versions.c.valid_to_run.is_(None))).scalar()
    bend_numbers(account, lambda number_id, body: BAD_VALUES[fault](body) if number_id == victim else body)
    account.advance(days=1)
    summary = sync(server, store, make_client)
    assert summary.data_issues >= 1
    with store.connect() as c:
        assert c.execute(select(number_versions.c.row_hash).where(
            number_versions.c.number_id == victim, number_versions.c.valid_to_run.is_(None))).scalar() == kept
        assert victim in set(c.execute(select(data_issues.c.record_id)).scalars())
    account.advance(days=1)
    sync(server, store, make_client)  # and the next night still works


def test_listing_items_that_are_not_objects_are_data_issues(make_sandbox, make_client, store):
    server = make_sandbox(numbers=30)
    account = server.account
    victims = some_live_ids(account, 2)
    bend_numbers(account, lambda number_id, body: (None if number_id == victims[0] else 42)
                 if number_id in victims else body)
    summary = sync(server, store, make_client)
    assert summary.numbers_seen == len(account.listing(None)) + len(account.listing("released")) - 2
    with store.connect() as c:
        issues = c.execute(select(data_issues.c.field, data_issues.c.reason)).all()
    assert ("(record)", "must be an object, got null") in issues or ("(record)", "must be an object, got a number") in issues


def test_a_negative_call_cost_is_a_data_issue(make_sandbox, make_client, store):
    server = make_sandbox(numbers=30)
    account = server.account
    original = account.calls_page

    def negative_first(after, before, cursor, limit):
        data, next_cursor = original(after, before, cursor, limit)
        if data and cursor is None:
            data = [{**data[0], "cost": {**data[0]["cost"], "amount": "-0.50"}}, *data[1:]]
        return data, next_cursor

    account.calls_page = negative_first
    sync(server, store, make_client)
    with store.connect() as c:
        assert ("call", "cost.amount") in {(r.record_type, r.field) for r in c.execute(select(data_issues))}


def test_store_sums_never_overflow_on_either_engine(make_sandbox, make_client, store):
    server = make_sandbox(numbers=40)
    account = server.account
    managed = [n for n in account.listing(None) if n.upfront_cost is not None][:20]
    big = "999999999.99"  # just under the bound; 20 of them overflow a 64-bit sum of nano-units
    bend_numbers(account, lambda number_id, body: {**body, "cost_information": {
        **body["cost_information"], "monthly_cost": big, "currency": "USD"}}
        if number_id in {n.id for n in managed} else body)
    sync(server, store, make_client)
    with store.connect() as c:
        run_id = readers.latest_complete_run(c).id
        totals = readers.inventory_totals_by_run(c, [run_id])
    usd = totals[totals["currency"] == "USD"]["monthly_cost"].iloc[0]
    assert usd >= Decimal(big) * 20 and isinstance(usd, Decimal)


# -- 2. a run cannot be dated out of order -----------------------------------------------


def test_a_run_dated_before_the_newest_run_or_ahead_of_upstream_is_refused(make_sandbox, make_client, store):
    from reconcile.errors import ConfigError

    server = make_sandbox(numbers=20)
    account = server.account
    sync(server, store, make_client)
    before = store_state(store)
    with pytest.raises(ConfigError, match="before the newest complete run"):
        run_sync(make_client(server), store, clock=lambda: account.now - dt.timedelta(days=1))
    with pytest.raises(ConfigError, match="ahead of the Truedy API's own clock"):
        run_sync(make_client(server), store, clock=lambda: account.now + dt.timedelta(days=3000))
    assert store_state(store) == before, "no version, call or watermark moved"


def test_the_sandbox_date_header_follows_its_clock(make_sandbox, make_client):
    server = make_sandbox(numbers=5)
    client = make_client(server)
    client.list_agents()
    assert client.server_date == server.account.now.replace(microsecond=0)


# -- 2b. the write lock is held for the commit, not the download ---------------------------


class WriterDuringCalls:
    """A progress sink that, while the calls download, checks another writer is not kept waiting."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.phase_name = ""
        self.checks: list[bool] = []

    def phase(self, name, total=None):
        self.phase_name = name

    def advance(self, count=1):
        if self.phase_name == "calls" and len(self.checks) < 3:
            self.checks.append(self._other_writer_gets_in())

    def finish(self):
        pass

    def abort(self):
        pass

    def _other_writer_gets_in(self) -> bool:
        if self.engine.dialect.name == "sqlite":
            import sqlite3

            other = sqlite3.connect(self.engine.url.database, timeout=0.2)
            try:
                other.execute("BEGIN IMMEDIATE")  # the write lock, now or within 0.2 s
                other.rollback()
                return True
            except sqlite3.OperationalError:
                return False
            finally:
                other.close()
        from sqlalchemy import text

        # no transaction of the sync that has written is open while it downloads (one that has written
        # holds a transaction id); the thread reading the open versions may be between its two reads
        with self.engine.connect() as c:
            return c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                  "AND state LIKE 'idle in transaction%' AND backend_xid IS NOT NULL "
                                  "AND pid <> pg_backend_pid()")).scalar() == 0


def test_other_writers_are_not_held_up_while_the_calls_download(make_sandbox, make_client, store):
    server = make_sandbox(numbers=150)
    probe = WriterDuringCalls(store)
    client = make_client(server, calls_page_size=50)
    summary = run_sync(client, store, clock=lambda: server.account.now, options=SyncOptions(call_slices=1),
                       progress=probe)
    assert summary.calls_added > 150 and len(probe.checks) == 3
    assert all(probe.checks), "the store's write lock (or an open transaction) was held during the download"
