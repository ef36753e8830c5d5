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
    first = client.list_numbers(known={})
    assert first.unchanged == set() and set(first.fingerprints) == {r.id for r in first.records}
    stored = dict(first.fingerprints)
    changed = sorted(stored)[::7]
    for number_id in changed:
        stored[number_id] = "0" * 32  # as if stored from an older record
    stored["num_GONE"] = "f" * 32     # a stored number no longer listed: neither parsed nor unchanged
    second = client.list_numbers(known={print_: rid for rid, print_ in stored.items()})
    assert sorted(r.id for r in second.records) == changed
    assert second.unchanged == set(first.fingerprints) - set(changed)
    assert {k: second.fingerprints[k] for k in changed} == {k: first.fingerprints[k] for k in changed}
    assert second.duplicates == 0 and not second.drift and second.issues == []
    assert [r.id for r in second.records] == [r.id for r in first.records if r.id in set(changed)]  # the API's order


# -- pages read against fingerprints: each record kept as the bytes it was served in -------------


PAGE = ('{"data":[{"id":"num_1","label":"caf\\u00e9 \\"A\\" \u2028 \U0001f600","n":[1,2.5,-0.0,1e300],'
        '"big":123456789012345678901234567890,"o":{"k":null,"t":true}},\n  42, null, "x", [], {}],'
        ' "meta" : {"page":1,"total_pages":1,"total_results":6}}').encode()


def test_a_page_kept_as_raw_records_decodes_as_the_whole_page_and_digests_the_served_bytes():
    import hashlib
    import json

    import orjson

    from reconcile.truedy.fields import fingerprint
    from reconcile.truedy.paging import with_raw_records

    body = with_raw_records(PAGE)
    whole = orjson.loads(PAGE)  # what every answer was decoded by, record by record the same values
    assert [orjson.loads(memoryview(raw)) for raw in body["data"]] == whole["data"] != json.loads(PAGE)["data"]  # big int
    assert body["meta"] == whole["meta"] and set(body) == {"data", "meta"}
    first = PAGE[PAGE.index(b"{", 1):PAGE.index(b"}},") + 2]  # the first record's bytes, exactly as served
    assert bytes(body["data"][0]) == first
    assert fingerprint(body["data"][0]) == hashlib.blake2b(first, digest_size=16).hexdigest()
    assert fingerprint(body["data"][1]) != fingerprint(body["data"][2])


@pytest.mark.parametrize("content, shape", [
    (b'[{"id": "a"}]', list), (b'{"data": 5, "meta": {}}', dict), (b'{"meta": {}}', dict), (b'"text"', str)])
def test_a_page_of_the_wrong_shape_is_decoded_whole_for_the_paginator_to_refuse(content, shape):
    from reconcile.truedy.paging import with_raw_records

    body = with_raw_records(content)
    assert isinstance(body, shape) and (shape is not dict or body.get("data") in (5, None))


@pytest.mark.parametrize("content", [b'{"data": [{"id": "a"},], "meta": {}}', b'{"data": [{"id": "a"}',
                                     b'{"data": [{"id": "\\ud800"}], "meta": {}}', b'\xff{"data": []}'])
def test_a_page_that_is_not_json_is_refused_whole_as_orjson_refuses_it(content):
    import msgspec
    import orjson

    from reconcile.truedy.paging import with_raw_records

    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(content)
    with pytest.raises(msgspec.DecodeError):
        with_raw_records(content)


@pytest.mark.parametrize("bad_answers, outcome", [(2, "retried"), (99, "refused")])
def test_a_fingerprinted_listing_page_that_is_not_json_is_retried_then_refused(make_sandbox, make_client, monkeypatch,
                                                                              bad_answers, outcome):
    from reconcile.errors import ContractError
    from reconcile.sandbox import app as sandbox_app

    server = make_sandbox(numbers=30, seed=5)
    client = make_client(server, page_size=10)
    stored = client.list_numbers(known={}).fingerprints
    known = {print_: rid for rid, print_ in stored.items()}
    real_json, left = sandbox_app._json, [bad_answers]

    def cut_short(body, status=200, headers=None):
        response = real_json(body, status, headers)
        if isinstance(body, dict) and "meta" in body and left[0] > 0:
            left[0] -= 1
            response.body = response.body[:-7]  # the connection dropped mid-answer, the length header says so
            response.headers["content-length"] = str(len(response.body))
        return response

    monkeypatch.setattr(sandbox_app, "_json", cut_short)
    if outcome == "refused":
        with pytest.raises(ContractError, match="a body that is not JSON"):
            client.list_numbers(known=known)
        return
    again = client.list_numbers(known=known)
    assert again.unchanged == set(stored) and again.records == [] and client.stats.retries >= 2


@pytest.mark.parametrize("bent", [b'"country_code":"US","z":1e400', b'"country_code":"\xff"'])
def test_a_changed_record_orjson_refuses_inside_a_well_formed_page_is_a_contract_error(make_sandbox, make_client,
                                                                                      monkeypatch, bent):
    """msgspec passes the page (it checks only where records start and end); orjson refuses the record."""
    from reconcile.errors import ContractError
    from reconcile.sandbox import app as sandbox_app

    server = make_sandbox(numbers=12, seed=5)
    client = make_client(server, page_size=10)
    real_json = sandbox_app._json

    def bend(body, status=200, headers=None):
        response = real_json(body, status, headers)
        if isinstance(body, dict) and "meta" in body:
            response.body = response.body.replace(b'"country_code":"US"', bent, 1)
            response.headers["content-length"] = str(len(response.body))
        return response

    monkeypatch.setattr(sandbox_app, "_json", bend)
    with pytest.raises(ContractError, match="a body that is not JSON"):
        client.list_numbers(known={})


def test_fingerprints_digested_another_way_cost_one_parse_and_no_version(make_sandbox, make_client, store):
    """A store whose fingerprints were digested otherwise (an older release re-encoded each record) is read
    in full once: no version opens or closes, the fingerprints become the served bytes' own, and the next
    listing parses nothing."""
    from sqlalchemy import select, update

    from reconcile.store.schema import number_versions
    from reconcile.sync import SyncOptions, run_sync

    server = make_sandbox(numbers=80, seed=9)
    client = make_client(server, page_size=20)

    def sync():
        return run_sync(client, store, clock=lambda: server.account.now, options=SyncOptions(call_slices=1))

    sync()
    open_versions = select(number_versions.c.number_id, number_versions.c.version_id,
                           number_versions.c.source_hash).where(number_versions.c.valid_to_run.is_(None))
    with store.begin() as connection:
        digested = {row.number_id: row.source_hash for row in connection.execute(open_versions)}
        connection.execute(update(number_versions).values(source_hash="0" * 32))
    again = sync()
    assert (again.versions_opened, again.versions_closed) == (0, 0)
    with store.connect() as connection:
        assert {row.number_id: row.source_hash for row in connection.execute(open_versions)} == digested
    listing = client.list_numbers(known={print_: rid for rid, print_ in digested.items()})
    assert listing.records == [] and listing.unchanged == {n.id for n in server.account.listing(None)}
