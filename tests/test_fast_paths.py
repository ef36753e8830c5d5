"""The report's fast paths give what the plain way gives: totals counted per distinct amount, columns
formatted per distinct text, records looked up per agent pair, a store write on a thread."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import threading
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from reconcile.analysis import flags
from reconcile.analysis.billing import NumberFacts, PriceObservation, price_at
from reconcile.analysis.monthly import Prices, recurring_by
from reconcile.analysis.nightly import breakdown, changes_between, totals_by_currency
from reconcile.reports.csvfile import REPEATS_SAMPLE, _format_column, cell
from reconcile.reports.nightly import flagged_json
from reconcile.store.database import open_engine, upgrade, write_beside
from reconcile.store.readers import sort_frame
from reconcile.store.schema import sync_state
from reconcile.store.writer import begin_run, set_state

AMOUNTS = st.one_of(st.none(), st.just(float("nan")),
                    st.decimals(min_value=-1000, max_value=1000, places=4, allow_nan=False, allow_infinity=False))
CURRENCIES = st.one_of(st.none(), st.sampled_from(["USD", "EUR", "JPY"]))


def naive_totals(amounts: list[Any], currencies: list[Any]) -> dict[str, tuple[Decimal, int]]:
    """The plain fold the counted totals must equal: one addition per row."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    counts: dict[str, int] = defaultdict(int)
    for amount, currency in zip(amounts, currencies, strict=True):
        if isinstance(amount, Decimal) and isinstance(currency, str):
            sums[currency] += amount
            counts[currency] += 1
    return {c: (sums[c], counts[c]) for c in sums}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(AMOUNTS, CURRENCIES), max_size=60))
def test_totals_counted_per_distinct_amount_equal_the_plain_sum(rows):
    amounts, currencies = [a for a, _ in rows], [c for _, c in rows]
    totals = totals_by_currency(amounts, currencies)
    assert [t.currency for t in totals] == sorted(t.currency for t in totals)
    assert {t.currency: (t.amount, t.count) for t in totals} == naive_totals(amounts, currencies)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", None]), st.sampled_from(["", "unassigned", "idle"]),
                          AMOUNTS, CURRENCIES, AMOUNTS), min_size=1, max_size=40))
def test_breakdown_equals_a_row_by_row_count(rows):
    frame = pd.DataFrame(rows, columns=["key", "flag", "monthly_cost", "currency", "monthly_savings"])
    frame = frame.astype({"monthly_cost": object, "monthly_savings": object})
    made = breakdown(frame, [r[0] for r in rows], "agent").set_index("agent")
    for key in made.index:
        mine = [r for r in rows if (r[0] or "(none)") == key]
        assert made.at[key, "numbers"] == len(mine)
        assert made.at[key, "flagged"] == sum(1 for r in mine if r[1])
        cost = naive_totals([r[2] for r in mine], [r[3] for r in mine])
        assert {t.currency: (t.amount, t.count) for t in made.at[key, "monthly_cost"]} == cost
        saving = naive_totals([r[4] if r[1] else None for r in mine], [r[3] for r in mine])
        assert {t.currency: (t.amount, t.count) for t in made.at[key, "savings"]} == saving
    assert set(made.index) == {r[0] or "(none)" for r in rows}


def test_a_reasons_agents_are_written_once_per_distinct_pair_blanks_included(monkeypatch):
    # a text column's blanks are NaN, a distinct key each (a NaN hashes by identity): as None they are one pair
    frame = pd.DataFrame({"inbound_agent_id": ["a1", None, None, "a1", None, "gone"] * 50,
                          "outbound_agent_id": ["a1", None, "a2", None, None, None] * 50}, dtype="str")
    agents = pd.DataFrame({"agent_id": ["a1", "a2"], "name": ["Sales", "Care"], "status": ["active", "archived"]})
    written: list[tuple[Any, ...]] = []
    plain = flags._agents_text
    monkeypatch.setattr(flags, "_agents_text", lambda pair, *rest: written.append(pair) or plain(pair, *rest))
    made = flags.agents_texts(frame, agents)
    assert sorted(written, key=str) == sorted({("a1", "a1"), (None, None), (None, "a2"), ("a1", None),
                                               ("gone", None)}, key=str)
    assert made[:6] == ["active agent 'Sales'", "", "archived agent 'Care'", "active agent 'Sales'", "",
                        "unknown agent gone"]
    assert len(made) == 300


def test_recurring_by_counts_and_sums_each_value():
    held = pd.DataFrame({"country_code": ["US", "US", None, "GB", "US"],
                         "cost_at": [Decimal("1.15"), Decimal("1.15"), None, Decimal("2"), Decimal("0.5")],
                         "currency": ["USD", "USD", None, "GBP", "USD"]})
    rows = recurring_by(held, "country_code")
    assert [(r["key"], r["numbers"]) for r in rows] == [("US", 3), ("(none)", 1), ("GB", 1)]
    us = rows[0]["cost"][0]
    assert (us.currency, us.amount, us.count) == ("USD", Decimal("2.80"), 3)
    assert rows[1]["cost"] == []


def test_prices_worked_out_once_are_each_numbers_price_at_any_time():
    at = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    day = dt.timedelta(days=1)

    def number(number_id: str, managed: bool, prices: tuple[PriceObservation, ...]) -> NumberFacts:
        return NumberFacts(number_id, None, "truedy" if managed else "twilio", managed, "USD", None, at, None, prices)

    changed = (PriceObservation(at, at + 9 * day, Decimal("1.15")), PriceObservation(at + 10 * day, None, Decimal("1.25")))
    facts = {"one": number("one", True, (PriceObservation(at, None, Decimal("1.15")),)),
             "two": number("two", True, changed), "imported": number("imported", False, ()),
             "unpriced": number("unpriced", True, ())}
    frame = pd.DataFrame({"number_id": ["two", "one", "imported", "unpriced", "unknown"]})
    prices = Prices.of(frame, facts)
    for when in (at - day, at + 5 * day, at + 30 * day):
        assert prices.at(when) == [price_at(changed, when)[0], Decimal("1.15"), None, None, None]
    assert prices.at(at + 30 * day)[0] == Decimal("1.25")


TEXTS = st.one_of(st.none(), st.just(float("nan")),
                  st.text(alphabet=st.sampled_from("=+-@\t\r,\"ab1 \x00"), max_size=6),
                  st.from_regex(r"\+[0-9]{1,17}\n?", fullmatch=True),  # E164 or nearly: each neutralised or not
                  st.sampled_from(["+14155550100", "USD", "local"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXTS, max_size=30), st.integers(min_value=1, max_value=3))
def test_a_text_column_formats_as_cell_by_cell_whether_its_texts_repeat_or_not(values, repeats):
    for column in (pd.Series(values * repeats, dtype=object), pd.Series(values * repeats, dtype="str")):
        expected = [cell(None if isinstance(v, float) else v) for v in column.tolist()]
        assert _format_column(column, None) == expected


def test_a_long_column_of_few_texts_takes_the_lookup_and_neutralises_formulas():
    values = ["=SUM(A1)", "USD", None, "+14155550100", "-2"] * (REPEATS_SAMPLE // 2)
    column = pd.Series(values, dtype="str")
    assert _format_column(column, None)[:5] == ["'=SUM(A1)", "USD", "", "+14155550100", "'-2"]
    assert _format_column(column, None) == [cell(v) for v in values]


@pytest.fixture
def file_store(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def test_a_write_beside_runs_on_a_thread_and_is_committed_when_the_block_ends(file_store):
    run_id = begin_run(file_store, dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    threads: list[str] = []

    def write(connection: Any) -> None:
        threads.append(threading.current_thread().name)
        set_state(connection, "probe", "written", run_id)

    with write_beside(file_store, write, "probe"):
        pass
    assert threads and threads[0] != threading.current_thread().name
    with file_store.connect() as connection:
        assert connection.execute(select(sync_state.c.value).where(sync_state.c.key == "probe")).scalar() == "written"


def test_a_failed_write_beside_raises_when_the_block_ends_and_writes_nothing(file_store):
    run_id = begin_run(file_store, dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, tzinfo=dt.UTC))

    def write(connection: Any) -> None:
        set_state(connection, "probe", "half", run_id)
        raise RuntimeError("the disk is full")

    went_on = []
    with pytest.raises(RuntimeError, match="the disk is full"), write_beside(file_store, write, "probe"):
        went_on.append(True)
    assert went_on == [True]
    with file_store.connect() as connection:
        assert connection.execute(select(sync_state.c.value).where(sync_state.c.key == "probe")).scalar() is None


def test_an_in_memory_store_is_written_in_this_thread_before_the_block():
    engine = open_engine("sqlite://")
    upgrade(engine)
    threads: list[str] = []
    with write_beside(engine, lambda connection: threads.append(threading.current_thread().name), "probe"):
        assert threads == [threading.current_thread().name]
    engine.dispose()


FIELDS = st.text(alphabet=st.sampled_from(',"\r\n\tab =\x00\u2028é'), max_size=5)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(FIELDS, min_size=3, max_size=3), max_size=20), st.integers(min_value=1, max_value=3))
def test_rows_joined_here_are_the_bytes_csv_writer_writes(rows, width):
    import csv
    import io

    from reconcile.reports.csvfile import write_frames_csv

    columns = ["a", "b", "c"][:width]
    frame = pd.DataFrame([row[:width] for row in rows], columns=columns, dtype=object)
    expected = io.StringIO(newline="")
    csv.writer(expected, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n").writerows(
        [columns] + [[cell(v) for v in row[:width]] for row in rows])
    path = Path(tempfile.mkdtemp()) / "out.csv"
    write_frames_csv(path, [frame], columns)
    assert path.read_bytes() == expected.getvalue().encode("utf-8")


ROW_VALUES = st.one_of(st.text(), st.integers(min_value=-1, max_value=10**6),
                       st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False).map(float))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(ROW_VALUES, ROW_VALUES, ROW_VALUES), max_size=5))
def test_the_pages_rows_as_orjson_writes_them_are_the_bytes_json_dumps_wrote(rows):
    """flagged_json writes with orjson what json.dumps(ensure_ascii=False, compact) wrote: the page's
    bytes do not change with the faster encoder (text orjson refuses, a lone surrogate, never reaches a
    report: the client's orjson refuses it in the API's answer)."""
    try:
        fast = orjson.dumps(rows).decode("utf-8")
    except orjson.JSONEncodeError:
        return
    assert fast == json.dumps(rows, ensure_ascii=False, separators=(",", ":"))


def test_flagged_json_escapes_markup_and_keeps_every_row():
    flagged = pd.DataFrame({
        "phone_number": ["+14155550100", "+14155550101"], "number_id": ["num_A", "num_B"],
        "label": ["</script><!--", "caf\u00e9 & \u2028"], "flag": ["idle", "unassigned"], "reason": ["r", "s"],
        "recommended_action": ["release", "review"], "monthly_savings": [Decimal("1.15"), None],
        "savings_basis": ["truedy_fee", "unknown"], "currency": ["USD", "USD"], "idle_days": [40, None],
        "first_flagged_at": [dt.datetime(2026, 11, 1, tzinfo=dt.UTC)] * 2, "inbound_agent_id": ["agt_1", None],
        "outbound_agent_id": [None, None], "country_code": ["US", "US"], "inbound_agent_name": ["Ann", None]})
    body = flagged_json(flagged)
    assert "<" not in body and ">" not in body and "&" not in body
    rows = json.loads(body)
    assert [r[2] for r in rows] == ["</script><!--", "caf\u00e9 & \u2028"]
    assert [r[6:8] for r in rows] == [["1.15", 1.15], ["", -1]] and [r[10] for r in rows] == [40, -1]
    assert [r[12] for r in rows] == ["Ann", ""]


SORT_TEXTS = st.text(alphabet=st.sampled_from("ab\u00e9\U0001f600 Z"), max_size=4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(SORT_TEXTS, st.integers(min_value=-3, max_value=3)), min_size=2, max_size=30),
       st.sampled_from([["text"], ["text", "run"], ["run", "text"], ["text", "position"], ["position", "text"]]),
       st.booleans(), st.sampled_from([None, "a\x00", "a\x00b"]), st.booleans(), st.booleans())
def test_a_frame_sorted_by_numpy_is_the_frame_pandas_sorts(rows, names, as_str, odd, blank, huge):
    """sort_frame's order (numpy, fixed-width texts) is pandas' stable order, code point by code point;
    blanks, NUL characters and integers past 64 bits go the pandas way."""
    texts: list[str | None] = [text for text, _ in rows]
    if odd is not None:
        texts[0] = odd
    if blank:
        texts[-1] = None
    positions = [run for _, run in rows]
    if huge:
        positions[0] = 2**70
    frame = pd.DataFrame({"text": pd.Series(texts, dtype="str" if as_str else object),
                          "run": [run for _, run in rows], "position": pd.Series(positions, dtype=object),
                          "row": range(len(rows))})
    expected = frame.sort_values(names, kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(sort_frame(frame, names), expected)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1),
                                                  timezones=st.just(dt.UTC))), min_size=1, max_size=20),
       st.booleans())
def test_flagged_since_days_formatted_once_each_are_each_rows_own(times, as_objects):
    """The page's "flagged since" column (distinct times formatted once) is each row's own UTC date."""
    from reconcile.clock import format_timestamp
    from reconcile.reports.nightly import _days

    column = pd.Series(times, dtype=object) if as_objects else pd.Series(times)
    assert _days(column) == [format_timestamp(t)[:10] if t is not None else "" for t in times]


CALL_VALUES = st.tuples(
    st.text(min_size=1, max_size=6), st.text(min_size=1, max_size=4), st.one_of(st.none(), st.text(max_size=4)),
    st.sampled_from(["inbound", "outbound"]), st.one_of(st.none(), st.just("+14155550100")), st.none(),
    st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC)),
    st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC)),
    st.integers(min_value=0, max_value=10**6), st.decimals(min_value=0, max_value=100, places=4, allow_nan=False),
    st.sampled_from(["USD", "EUR", "JPY"]))


@settings(max_examples=100, deadline=None)
@given(st.lists(CALL_VALUES, max_size=12), st.sampled_from(["sqlite", "postgresql"]))
def test_calls_bound_a_column_at_a_time_are_the_rows_bound_one_by_one(values, dialect_name):
    """CallStaging.add_calls binds a Call's fields column by column (zip at C speed): the same values, in
    the same order, as binding each call's row (the calls table's columns, the run id last)."""
    from sqlalchemy.dialects import postgresql, sqlite

    from reconcile.store.schema import calls
    from reconcile.store.writer import Binder
    from reconcile.truedy.records import Call

    bind = Binder(calls, (sqlite if dialect_name == "sqlite" else postgresql).dialect())
    records = [Call(*value) for value in values]
    assert bind.names == ["call_id", *Call._fields[1:], "sync_run_id"]  # the fields are the table's columns
    rows = [{"call_id": c.id, **{name: getattr(c, name) for name in Call._fields[1:]}, "sync_run_id": 7}
            for c in records]
    by_column = bind.columns([*zip(*records, strict=True), [7] * len(records)]) if records else []
    assert [list(row) for row in by_column] == bind(rows)


def plain_changes(previous: pd.DataFrame, current: pd.DataFrame, previous_run_id: int) -> dict[str, list[str]]:
    """Bought, released and reassigned, each number looked up among every live one."""
    live = current[current["status"].isin(["active", "pending"])]
    before = previous.set_index("number_id")
    was_live = set(before.index[before["status"].isin(["active", "pending"])])
    held = set(live["number_id"])
    def agents(row: Any) -> tuple[str, str]:  # a blank agent is None or pandas' NaN
        return tuple(a if isinstance(a, str) else "" for a in (row.inbound_agent_id, row.outbound_agent_id))

    old = {row.number_id: agents(row) for row in previous.itertuples() if row.number_id in was_live}
    return {
        "bought": [r.number_id for r in live.itertuples()
                   if r.valid_from_run > previous_run_id and r.number_id not in set(before.index)],
        "released": [n for n in previous["number_id"] if n in was_live and n not in held],
        "reassigned": [r.number_id for r in live.itertuples() if r.number_id in old and old[r.number_id] != agents(r)],
    }


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["kept", "moved", "released", "gone", "relabelled", "bought", "returned"]),
                          st.sampled_from(["active", "pending", "released"]),
                          st.sampled_from([None, "a1", "a2"])), max_size=30),
       st.booleans())
def test_changes_looked_up_among_the_recent_versions_are_those_found_among_every_number(numbers, whole) -> None:
    """A night's bought, released and reassigned numbers, from the previous run's changed versions (as the
    report reads them) or its whole inventory, are those a lookup among every live number finds."""
    previous_rows, current_rows = [], []
    for i, (fate, status, agent) in enumerate(numbers):
        number = f"n{i:02d}"
        was = {"number_id": number, "status": status, "inbound_agent_id": agent, "outbound_agent_id": None,
               "valid_from_run": 1, "valid_to_run": None}
        if fate == "bought":
            current_rows.append({**was, "status": "active", "valid_from_run": 3})
            continue
        if fate == "kept":
            previous_rows.append(was)
            current_rows.append(was)
            continue
        previous_rows.append({**was, "valid_to_run": 3})
        if fate == "moved":
            current_rows.append({**was, "inbound_agent_id": "a3", "valid_from_run": 3})
        elif fate == "relabelled":  # a new version, the same agents
            current_rows.append({**was, "valid_from_run": 3})
        elif fate == "released":
            current_rows.append({**was, "status": "released", "valid_from_run": 3})
        elif fate == "returned":  # back in service
            current_rows.append({**was, "status": "active", "valid_from_run": 3})
    columns = ["number_id", "status", "inbound_agent_id", "outbound_agent_id", "valid_from_run", "valid_to_run"]
    previous = pd.DataFrame(previous_rows, columns=columns)
    current = pd.DataFrame(current_rows, columns=columns)
    changed = previous if whole else previous[previous["valid_to_run"].notna()]
    found = changes_between(changed, current, pd.DataFrame(), run_id=3, previous_run_id=2)
    expected = plain_changes(previous, current, previous_run_id=2)
    assert found.bought["number_id"].tolist() == expected["bought"]
    assert found.released["number_id"].tolist() == expected["released"]
    assert found.reassigned["number_id"].tolist() == expected["reassigned"]
