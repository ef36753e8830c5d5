"""The client against the sandbox over real HTTP: complete, exact, unique listings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest

from reconcile.sandbox.billing import billing_for
from reconcile.sandbox.model import to_epoch


@pytest.mark.parametrize("size", [1, 57, 600, 3000])
def test_number_listing_equals_the_sandbox_ground_truth(make_sandbox, make_client, size):
    server = make_sandbox(numbers=size, seed=size)
    client = make_client(server, page_size=50)
    listing = client.list_numbers()
    account = server.account
    live = {n.id: n for n in account.numbers if n.status in ("active", "pending")}
    assert sorted(r.id for r in listing.records) == sorted(live)
    assert listing.issues == [] and not listing.drift and listing.duplicates == 0
    for record in listing.records:
        truth = live[record.id]
        assert record.phone_number == truth.phone_number
        assert record.purchased_at == truth.purchased_at.replace(microsecond=0)
        assert {a.assignment_type: a.agent_id for a in record.assignments} == {
            d: agent for d, (agent, _) in truth.assignments.items()}
        if truth.is_truedy_managed:
            assert record.cost_information is not None
            assert record.cost_information.monthly_cost == truth.monthly_cost
            assert isinstance(record.cost_information.monthly_cost, Decimal)
        else:
            assert record.cost_information is None


def test_released_listing_holds_the_last_400_days_and_get_finds_older_ones(make_sandbox, make_client):
    server = make_sandbox(numbers=800, seed=3)
    client = make_client(server)
    account = server.account
    cutoff = account.now - dt.timedelta(days=400)
    released = [n for n in account.numbers if n.status == "released"]
    old = [n for n in released if n.released_at < cutoff]
    listing = client.list_numbers("released")
    assert sorted(r.id for r in listing.records) == sorted(n.id for n in released if n.released_at >= cutoff)
    assert all(r.released_at is not None for r in listing.records)
    assert old, "the account should hold numbers released more than 400 days ago"
    fetched = client.get_number(old[0].id)
    assert fetched is not None and fetched.status == "released"
    assert client.get_number("num_DOESNOTEXIST") is None


def test_agents_and_their_metadata(make_sandbox, make_client):
    server = make_sandbox(numbers=400)
    agents = make_client(server, page_size=7).list_agents().records
    truth = {a.id: a for a in server.account.agents}
    assert sorted(a.id for a in agents) == sorted(truth)
    assert {a.status for a in agents} == {"active", "archived"}
    for agent in agents:
        assert dict(agent.metadata) == truth[agent.id].metadata


@pytest.mark.parametrize("slices", [1, 3])
def test_calls_by_cursor_in_time_slices_are_complete_and_unique(make_sandbox, make_client, slices):
    server = make_sandbox(numbers=300)
    client = make_client(server, calls_page_size=97)
    account = server.account
    after, before = account.now - dt.timedelta(days=60), account.now - dt.timedelta(days=2)
    ids = []
    for page in client.iter_calls(after, before, slices=slices):
        assert page.issues == []
        ids.extend(call.id for call in page.calls)
    table = account.calls
    mask = (table.started >= to_epoch(after)) & (table.started < to_epoch(before)) & (table.visible <= to_epoch(account.now))
    assert len(ids) == len(set(ids)) == int(mask.sum())


def test_calls_appear_only_after_they_end(make_sandbox, make_client):
    server = make_sandbox(numbers=300)
    account = server.account
    client = make_client(server)
    account.advance(days=1)
    now = to_epoch(account.now)
    used = next(n for n in account.numbers if n.intent == "used" and n.status == "active")
    # one call still running (started at most 10 min ago, 20 min long), published 5 min after it ends
    started = max(now - 600, int(account.calls.started[-1]) + 1)
    account.calls.append({"started": np.array([started]), "duration": np.array([1200]),
                          "visible": np.array([now + 900]), "number": np.array([used.index]),
                          "agent": np.array([0]), "outbound": np.array([1]), "cost_units": np.array([300]),
                          "currency": np.array([0])})
    window = (account.now - dt.timedelta(hours=3), account.now)
    table = account.calls
    late = {f"call_{i:010d}" for i in range(len(table)) if table.visible[i] > now}
    assert late
    seen_now = {c.id for page in client.iter_calls(*window) for c in page.calls}
    assert not (late & seen_now)
    account.advance(hours=2)
    seen_later = {c.id for page in client.iter_calls(*window) for c in page.calls}
    assert seen_now | late == seen_later, "late calls appear later, not never"


def test_invoices_and_line_items_add_up(make_sandbox, make_client):
    server = make_sandbox(numbers=300)
    client = make_client(server)
    invoices = client.list_invoices()
    assert {i.currency for i in invoices.records} >= {"USD", "GBP", "EUR"}
    assert [i.period_start for i in invoices.records] == sorted((i.period_start for i in invoices.records), reverse=True)
    for invoice in invoices.records[:4]:
        lines = client.list_line_items(invoice.id)
        assert lines.issues == []
        assert sum((line.amount for line in lines.records), Decimal(0)) == invoice.total
    assert {e.kind for e in billing_for(server.account).errors} == {
        "fee_after_release", "missing_fee", "amount_mismatch", "duplicate_fee",
        "fee_for_imported_number", "unknown_number", "usage_mismatch"}


def test_pages_are_fetched_a_bounded_distance_ahead_of_the_reader():
    """A listing of many pages holds a few dozen decoded pages at a time, whatever the reader's pace."""
    import threading
    import time

    import httpx

    from reconcile.truedy.client import AHEAD_PER_WORKER, TruedyClient

    client = TruedyClient(httpx.Client(), max_concurrency=4)  # no request is sent: the work is a function
    lock = threading.Lock()
    started, read, most_ahead = 0, 0, 0

    def work(item: int) -> int:
        nonlocal started, most_ahead
        with lock:
            started += 1
            most_ahead = max(most_ahead, started - read)
        return item * 2

    with client:
        results = []
        for result in client._in_threads(work, list(range(500))):
            time.sleep(0.0005)  # a reader slower than the workers
            with lock:
                read += 1
            results.append(result)
    assert results == [i * 2 for i in range(500)]  # in order, every one
    assert started == 500
    assert most_ahead <= 4 * AHEAD_PER_WORKER + 1
    assert most_ahead >= 4  # and the workers did run ahead of the reader


def test_a_listing_with_stored_fingerprints_parses_only_what_changed(make_sandbox, make_client):
    """Records served exactly as fingerprinted go to `unchanged`, unparsed; the rest come back parsed,
    each with its fingerprint; the two together are the whole listing, once each."""
    server = make_sandbox(numbers=600, seed=11)
    client = make_client(server, page_size=50)
    first = client.list_numbers(stored_fingerprints={})
    assert first.unchanged == set() and set(first.fingerprints) == {r.id for r in first.records}
    stored = dict(first.fingerprints)
    changed = sorted(stored)[::7]
    for number_id in changed:
        stored[number_id] = "0" * 32  # as if stored from an older record
    stored["num_GONE"] = "f" * 32     # a stored number no longer listed: neither parsed nor unchanged
    second = client.list_numbers(stored_fingerprints=stored)
    assert sorted(r.id for r in second.records) == changed
    assert second.unchanged == set(first.fingerprints) - set(changed)
    assert {k: second.fingerprints[k] for k in changed} == {k: first.fingerprints[k] for k in changed}
    assert second.duplicates == 0 and not second.drift and second.issues == []
    assert [r.id for r in second.records] == [r.id for r in first.records if r.id in set(changed)]  # the API's order
