"""The kept copy of the numbers owned: read back and patched, it is what the versions say, to the type."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import msgspec
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text, update

from reconcile.config import load_settings
from reconcile.review.nightly import LIVE, NOT_REVIEWED, evaluate_run
from reconcile.store import inventory_copy, readers
from reconcile.store.schema import inventory_copies
from reconcile.sync import SyncOptions, run_sync

TEXTS = st.one_of(st.none(), st.text(max_size=8))
TIMES = st.one_of(st.none(), st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1),
                                          timezones=st.just(dt.UTC)))
AMOUNTS = st.one_of(st.none(), st.decimals(min_value=0, max_value=10_000, places=4, allow_nan=False))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(TEXTS, st.booleans(), AMOUNTS, TIMES, st.integers(0, 2**40)), max_size=30),
       st.booleans())
def test_a_copy_read_back_is_the_frame_it_was(rows, blank_labels):
    """As the reader builds a frame from the driver's values: "str" texts (object when all blank), booleans,
    Decimal money, UTC times with NaT, integers."""
    values = {
        "number_id": [f"num_{i:04d}" for i in range(len(rows))],
        "label": [None if blank_labels else r[0] for r in rows],
        "is_truedy_managed": [r[1] for r in rows],
        "monthly_cost": [r[2] for r in rows],
        "purchased_at": pd.DatetimeIndex(pd.to_datetime([r[3] for r in rows], utc=True)).as_unit("us"),
        "valid_from_run": [r[4] for r in rows],
    }
    frame = pd.DataFrame(values)
    frame["monthly_cost"] = pd.Series([r[2] for r in rows], index=frame.index, dtype=object)
    ids = np.arange(len(rows), dtype=np.int64) * 7
    back, back_ids = inventory_copy.decode(inventory_copy.encode(frame, ids))
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert back_ids.tolist() == ids.tolist()


@pytest.mark.parametrize("body", [
    b"\x93not a copy",
    msgspec.msgpack.encode([1, 2, 3, 4]),                                    # not the layout
    msgspec.msgpack.encode([["a"], ["plain"], [["x", "y"]], b"\x01" * 8]),   # two rows, one version id
    msgspec.msgpack.encode([["a", "b"], ["plain"], [["x"]], b""]),           # a column short
    msgspec.msgpack.encode([["t"], ["time"], [b"\x01" * 7], b""]),           # times cut off mid-value
])
def test_a_body_that_is_not_a_whole_copy_is_none(body):
    assert inventory_copy.decode(body) is None


def test_a_copy_too_large_to_keep_is_not_kept_and_the_versions_are_read(make_sandbox, make_client, store, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setattr(inventory_copy, "MAX_BODY", 1000)
    server = make_sandbox(numbers=150)
    settings_ = dataclasses.replace(load_settings(environ={}), reports_dir=tmp_path / "reports")
    run_sync(make_client(server), store, clock=lambda: server.account.now, options=SyncOptions(call_slices=1))
    evaluate_run(settings_, store)
    with store.connect() as c:
        assert c.execute(select(func.count()).select_from(inventory_copies)).scalar() == 0


def full_read(connection, run_id):
    frame = readers.inventory_as_of(connection, run_id, LIVE, skip=tuple(c for c in NOT_REVIEWED if c != "version_id"))
    return frame.drop(columns="version_id"), frame["version_id"].tolist()


def sync_and_compare(server, make_client, store, settings_, monkeypatch, expect_copy: bool):
    """One night: sync, then the copy read back (patched) equals the versions read, and the evaluation keeps
    the copy of this run. Whether the copy was used (not the versions read again) is asserted too."""
    summary = run_sync(make_client(server), store, clock=lambda: server.account.now,
                       options=SyncOptions(call_slices=1))
    read_again = []
    plain = inventory_copy.readers.inventory_as_of
    monkeypatch.setattr(inventory_copy.readers, "inventory_as_of", lambda *a, **k: read_again.append(1) or plain(*a, **k))
    with store.connect() as c:
        copied, ids = inventory_copy.read_live(c, summary.run_id, LIVE, NOT_REVIEWED)
    monkeypatch.setattr(inventory_copy.readers, "inventory_as_of", plain)
    with store.connect() as c:
        expected, expected_ids = full_read(c, summary.run_id)
    pd.testing.assert_frame_equal(copied, expected, check_exact=True)
    assert ids.tolist() == expected_ids
    assert (not read_again) == expect_copy
    evaluate_run(settings_, store)  # the first evaluation of the newest run keeps its copy
    with store.connect() as c:
        kept = c.execute(select(inventory_copies.c.run_id, inventory_copies.c.numbers)).all()
    assert kept == [(summary.run_id, len(expected))], "one copy: this run's"
    return summary


def test_each_night_patches_the_copy_to_what_the_versions_say(make_sandbox, make_client, store, tmp_path,
                                                               monkeypatch):
    """Nights of buys, releases and reassignments, with the label column blank, then holding one text,
    then blank again: the patched copy is the frame the versions give, dtypes and order included."""
    server = make_sandbox(numbers=150)
    account = server.account
    for number in account.numbers:
        number.label = None
        number.touch()
    settings_ = dataclasses.replace(load_settings(environ={}), reports_dir=tmp_path / "reports")
    sync_and_compare(server, make_client, store, settings_, monkeypatch, expect_copy=False)  # no copy yet
    account.advance(days=1, churn=0.1)
    offer = account.search("US", "local", None, 1)[0]
    labelled = account.purchase(offer["phone_number"], account.now, label="Campaign, spring")
    sync_and_compare(server, make_client, store, settings_, monkeypatch, expect_copy=True)
    account.advance(days=1, churn=0.1)
    account.release(labelled.id, account.now)
    sync_and_compare(server, make_client, store, settings_, monkeypatch, expect_copy=True)
    account.advance(days=2, churn=0.1)
    sync_and_compare(server, make_client, store, settings_, monkeypatch, expect_copy=True)


@pytest.mark.parametrize("spoil", ["a closed version missing", "a row missing", "a row too many", "not a copy"])
def test_a_copy_the_versions_disagree_with_is_passed_over(make_sandbox, make_client, store, tmp_path, monkeypatch,
                                                          spoil):
    server = make_sandbox(numbers=150)
    settings_ = dataclasses.replace(load_settings(environ={}), reports_dir=tmp_path / "reports")
    sync_and_compare(server, make_client, store, settings_, monkeypatch, expect_copy=False)
    live = [n for n in server.account.numbers if n.status != "released"]
    released, untouched = live[0], live[-1]  # one released tonight (its version closes), one left as it is
    with store.begin() as c:
        frame, ids = inventory_copy.decode(c.execute(select(inventory_copies.c.body)).scalar_one())
        if spoil == "not a copy":
            spoiled = b"\x00" * 16
        elif spoil == "a row too many":  # a row repeated, with a version id no number has
            spoiled = inventory_copy.encode(pd.concat([frame, frame.tail(1)], ignore_index=True),
                                            np.append(ids, ids.max() + 1000))
        else:
            gone = released.id if spoil == "a closed version missing" else untouched.id
            row = frame.index[frame["number_id"] == gone][0]
            spoiled = inventory_copy.encode(frame.drop(index=row).reset_index(drop=True), np.delete(ids, row))
        c.execute(update(inventory_copies).values(body=spoiled))
    server.account.release(released.id, server.account.now + dt.timedelta(minutes=1))
    server.account.advance(hours=1)
    sync_and_compare(server, make_client, store, settings_, monkeypatch, expect_copy=False)
    with store.connect() as c:
        assert c.execute(select(func.count()).select_from(inventory_copies)).scalar() == 1


def test_money_in_the_copy_is_each_amount_once():
    """Read back, equal amounts are one Decimal object, as the reader shares them (prices repeat)."""
    frame = pd.DataFrame({"number_id": ["a", "b", "c"]})
    frame["monthly_cost"] = pd.Series([Decimal("1.15"), Decimal("1.15"), None], dtype=object)
    back, _ = inventory_copy.decode(inventory_copy.encode(frame, np.array([1, 2, 3])))
    first, second, blank = back["monthly_cost"].tolist()
    assert first is second and first == Decimal("1.15") and blank is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab\u00e9Z0", max_size=3)), st.lists(st.text(alphabet="ab\u00e9Z0", max_size=3)))
def test_rows_merged_by_bisection_are_in_the_order_a_stable_sort_gives(kept, added):
    kept, added = sorted(kept), sorted(added)
    order = inventory_copy._merged_order(kept, added)
    both = kept + added
    assert [both[i] for i in order] == sorted(both)  # values in order
    assert order.tolist() == sorted(range(len(both)), key=lambda i: both[i])  # ties: kept first, each in order


def test_on_postgresql_the_body_is_kept_out_of_line_uncompressed(store):
    if store.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL storage setting")
    with store.connect() as c:
        storage = c.execute(text("SELECT attstorage FROM pg_attribute WHERE attrelid = 'inventory_copies'::regclass "
                                 "AND attname = 'body'")).scalar_one()
    assert storage == "e"  # EXTERNAL: no pglz pass over 10 MB of msgpack on every write


@pytest.mark.parametrize("width", [3, 20])
def test_a_copy_written_a_column_at_a_time_is_the_whole_list_encoded_at_once(width):
    """msgpack is a stream: the buffer filled column by column holds the bytes of [names, kinds, columns, ids]
    encoded in one go (an array of 16 or more columns takes the longer header)."""
    frame = pd.DataFrame({f"c{i}": [f"v{i}", None, "x"] for i in range(width)})
    frame["monthly_cost"] = pd.Series([Decimal("2.5"), None, Decimal("2.5")], dtype=object)
    frame["purchased_at"] = pd.to_datetime(["2026-01-01T00:00:00Z", None, "2026-02-01T12:00:00Z"], utc=True)
    ids = np.array([3, 1, 2], dtype=np.int64)
    names = list(frame.columns)
    kinds = [inventory_copy._kind(frame[n], n) for n in names]
    columns = [inventory_copy._values(frame[n], k) for n, k in zip(names, kinds, strict=True)]
    whole = msgspec.msgpack.encode([names, kinds, columns, ids.tobytes()])
    assert bytes(inventory_copy.encode(frame, ids)) == whole
    assert kinds[-2:] == ["money", "time"]
    back, back_ids = inventory_copy.decode(whole)
    pd.testing.assert_frame_equal(back, frame.assign(purchased_at=frame["purchased_at"].dt.as_unit("us")))
    assert back_ids.tolist() == [3, 1, 2]


def test_a_copy_with_no_numbers_is_not_patched(make_sandbox, make_client, store, tmp_path, monkeypatch):
    """An empty frame is typed by the reader its own way (no rows to infer from): a night that owns no
    numbers, or follows one that owned none, reads the versions."""
    server = make_sandbox(numbers=150)
    account = server.account
    settings_ = dataclasses.replace(load_settings(environ={}), reports_dir=tmp_path / "reports")
    for number in list(account.numbers):
        if number.status != "released":
            account.release(number.id, account.now)
    account.advance(days=0, hours=1)
    sync_and_compare(server, make_client, store, settings_, monkeypatch, expect_copy=False)
    offer = account.search("US", "local", None, 1)[0]
    account.purchase(offer["phone_number"], account.now)
    account.advance(days=0, hours=1)
    sync_and_compare(server, make_client, store, settings_, monkeypatch, expect_copy=False)
