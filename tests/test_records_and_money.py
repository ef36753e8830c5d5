"""Typed records: Decimal money, UTC timestamps, unknown fields ignored, bad fields named."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import orjson
import pytest

from reconcile.money import format_amount, from_nanos, parse_amount, to_nanos
from reconcile.truedy.fields import RecordError
from reconcile.truedy.records import parse_call, parse_number

GOOD = {
    "id": "num_1", "phone_number": "+14155550100", "country_code": "US", "phone_number_type": "local",
    "status": "active", "is_truedy_managed": True, "provider": "truedy", "features": ["voice"],
    "cost_information": {"upfront_cost": "1.00", "monthly_cost": "1.15", "currency": "USD"},
    "label": "=cmd()", "purchased_at": "2026-11-03T14:05:09Z", "released_at": None,
    "assignments": [{"agent_id": "a1", "assignment_type": "inbound", "assigned_at": "2026-11-04T00:00:00+01:00"}],
    "some_future_field": {"x": 1},
}


def test_a_good_number_parses_exactly():
    number = parse_number(GOOD)
    assert number.cost_information.monthly_cost == Decimal("1.15")
    assert number.purchased_at == dt.datetime(2026, 11, 3, 14, 5, 9, tzinfo=dt.UTC)
    assert number.assignment("inbound").assigned_at == dt.datetime(2026, 11, 3, 23, 0, tzinfo=dt.UTC)
    assert number.assignment("outbound") is None
    assert number.label == "=cmd()"


def test_values_that_repeat_are_one_object_per_value_not_per_record():
    """100,000 numbers hold a handful of statuses, types, codes and prices: each is shared, not copied."""
    import orjson

    first, second = (parse_number(orjson.loads(orjson.dumps(GOOD))) for _ in range(2))  # fresh strings each time
    for name in ("status", "phone_number_type", "provider", "country_code"):
        assert getattr(first, name) is getattr(second, name), name
    assert first.cost_information.currency is second.cost_information.currency
    assert first.cost_information.monthly_cost is second.cost_information.monthly_cost
    assert first.assignments[0].assignment_type is second.assignments[0].assignment_type
    assert first.id == second.id and first.label == "=cmd()"  # the rest as served


@pytest.mark.parametrize(("change", "field"), [
    ({"cost_information": {"upfront_cost": "1", "monthly_cost": 1.15, "currency": "USD"}}, "cost_information.monthly_cost"),
    ({"cost_information": {"upfront_cost": "1", "monthly_cost": "1.15", "currency": "dollars"}}, "cost_information.currency"),
    ({"cost_information": None}, "cost_information"),
    ({"purchased_at": "2026-11-03 14:05"}, "purchased_at"),
    ({"phone_number": "4155550100"}, "phone_number"),
    ({"status": "deleted"}, "status"),
    ({"status": "released"}, "released_at"),
    ({"is_truedy_managed": "yes"}, "is_truedy_managed"),
    ({"assignments": [{"agent_id": "a", "assignment_type": "inbound", "assigned_at": "2026-01-01T00:00:00Z"}] * 2}, "assignments"),
])
def test_a_bad_field_is_named(change, field):
    with pytest.raises(RecordError) as caught:
        parse_number(GOOD | change)
    assert caught.value.field_name == field


def test_a_missing_field_is_named():
    raw = dict(GOOD)
    del raw["provider"]
    with pytest.raises(RecordError, match="provider: missing"):
        parse_number(raw)


def test_call_cost_must_be_a_decimal_string():
    raw = {"id": "c", "agent_id": "a", "number_id": None, "direction": "inbound", "started_at": "2026-11-01T00:00:00Z",
           "ended_at": "2026-11-01T00:01:00Z", "duration_seconds": 60, "cost": {"amount": "0.0150", "currency": "USD"}}
    assert parse_call(raw).cost_amount == Decimal("0.0150")
    with pytest.raises(RecordError, match="cost.amount"):
        parse_call(raw | {"cost": {"amount": 0.015, "currency": "USD"}})


@pytest.mark.parametrize(("text", "currency", "shown"), [
    ("0.7500", "USD", "0.75"), ("0.0075", "USD", "0.0075"), ("3", "USD", "3.00"), ("1.15", "EUR", "1.15"),
    ("12", "JPY", "12"), ("-0.25", "GBP", "-0.25"), ("1234567.5", "USD", "1234567.50"),
])
def test_money_is_formatted_with_minor_digits_and_significant_extra(text, currency, shown):
    assert format_amount(parse_amount(text), currency) == shown


def test_money_round_trips_through_nanos_exactly():
    for text in ("0.0075", "1.15", "99999999.999999999", "-3.10"):
        assert from_nanos(to_nanos(Decimal(text))) == Decimal(text)
    with pytest.raises(ValueError):
        parse_amount("0.0000000001")
    with pytest.raises(ValueError):
        parse_amount("NaN")


def _changed(usual, changes):
    """`usual` with each (field, value) of `changes` set in it; the value "missing" takes the field out."""
    record = dict(usual)
    for name, value in changes:
        if value == "missing":
            record.pop(name, None)
        else:
            record[name] = value
    return record


def _one_change(unusual):
    """A (field, value) drawn from `unusual` (field -> the values it may hold instead)."""
    from hypothesis import strategies as st

    return st.sampled_from(sorted(unusual)).flatmap(lambda name: st.tuples(st.just(name), st.sampled_from(unusual[name])))


def _page(records):
    """A calls page's records as `paging.with_raw_records` hands them on: each as its bytes."""
    import msgspec

    return [msgspec.Raw(json.dumps(record).encode()) for record in records]


def test_a_calls_page_is_read_the_same_at_c_speed_as_record_by_record():
    """`parse_calls` decodes a plain page by msgspec a column at a time; anything unusual sends the
    page the careful way. Either way: the same calls (times with the same zone, amounts with the
    same digits) and the same data issues as `parse_call` on each record."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from reconcile.truedy.fields import RecordError, record_id
    from reconcile.truedy.records import DataIssue, parse_call
    from reconcile.truedy.wire import parse_calls

    usual = {"id": "call_1", "agent_id": "agt_1", "number_id": "num_1", "direction": "inbound",
             "from_number": "+12125550100", "to_number": "+12125550101", "started_at": "2026-11-03T14:05:09Z",
             "ended_at": "2026-11-03T14:07:09Z", "duration_seconds": 120, "cost": {"amount": "0.0300", "currency": "USD"}}
    odd = [None, "", 7, True, [], {}]
    unusual = {  # what a field may hold instead; None among the values of a missing field
        "id": ["call_2", *odd], "agent_id": odd, "number_id": [None, "", 7, True, [], {}, "missing"],
        "direction": ["outbound", "sideways", *odd], "from_number": [None, 7, "missing"], "to_number": [None, [], "missing"],
        "started_at": ["2026-11-03T16:05:09+02:00", "2026-11-03T14:05:09+00:00", "2026-11-03 14:05:09",
                       "2026-11-03t14:05:09z", "2026-11-03T14:05:09.1234567Z", "1969-12-31T23:59:59Z",
                       "3000-01-01T00:00:00Z", "2026-02-30T14:05:09Z", "2026-11-03T14:05:60Z", "yesterday", *odd],
        "ended_at": ["2026-11-03T14:05:09.5Z", "2026-11-03T14:07:09", *odd],
        "duration_seconds": [0, 7_200, -1, 1.5, 2**31 + 1, 2**70, *odd],
        "cost": [{"amount": "0.03", "currency": "USD"}, {"amount": "-0.0100", "currency": "USD"},
                 {"amount": "-0", "currency": "USD"}, {"amount": "1,5", "currency": "USD"},
                 {"amount": "NaN", "currency": "USD"}, {"amount": "0.0000000001", "currency": "USD"},
                 {"amount": 0.03, "currency": "USD"}, {"amount": "0.0300", "currency": "usd"},
                 {"amount": "0.0300", "currency": "EURO"}, {"amount": "0.0300"}, {"currency": "USD"}, "0.03", *odd],
        "recording_url": ["a field the contract may add"],
    }

    def changed(changes):
        return _changed(usual, changes)

    calls = st.lists(_one_change(unusual), max_size=2).map(changed)

    def careful(page):  # as the client read a page before: decoded by orjson, then record by record
        taken, refused = [], []
        for raw in (orjson.loads(bytes(record)) for record in page):
            try:
                taken.append(parse_call(raw))
            except RecordError as exc:
                refused.append(DataIssue("call", record_id(raw), exc.field_name, exc.reason))
        return repr(taken), refused

    def same(records):
        page = _page(records)
        taken, refused = parse_calls(page)
        assert (repr(taken), refused) == careful(page)

    for name, values in unusual.items():  # every unusual value alone, in a page of its own and beside a usual call
        for value in values:
            same([changed([(name, value)])])
            same([usual, changed([(name, value)])])

    @settings(max_examples=300)
    @given(st.lists(calls, max_size=4))
    def check(records):
        same(records)

    check()


def test_a_number_read_from_its_bytes_is_the_number_read_field_by_field():
    """`plain_number` reads a record as served by msgspec; it answers None for anything unusual, and
    otherwise the very number `parse_number` reads from the decoded record (times with the same
    zone, amounts with the same digits). A usual record never needs the careful way."""
    import msgspec
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from reconcile.truedy.fields import RecordError
    from reconcile.truedy.wire import plain_number

    usual = {"id": "num_1", "phone_number": "+14155550100", "country_code": "US", "phone_number_type": "local",
             "status": "active", "is_truedy_managed": True, "provider": "truedy", "features": ["voice", "sms"],
             "cost_information": {"upfront_cost": "1.00", "monthly_cost": "1.15", "currency": "USD"},
             "label": "US local pool 22", "purchased_at": "2024-12-29T09:41:21Z", "released_at": None,
             "assignments": [{"agent_id": "agt_1", "assignment_type": "outbound", "assigned_at": "2025-08-02T01:31:18Z"}]}
    odd = [None, "", 7, True, [], {}, "missing"]
    times = ["2026-11-03T16:05:09+02:00", "2026-11-03 14:05:09", "2026-11-03T14:05:09.1234567Z", "1969-12-31T23:59:59Z",
             "2026-02-30T14:05:09Z", "yesterday"]
    inbound = {"agent_id": "agt_2", "assignment_type": "inbound", "assigned_at": "2025-08-03T01:31:18Z"}
    unusual = {
        "id": ["num_2", *odd], "phone_number": ["+1415555010", "14155550100", "+04155550100", "+14155550100\n", *odd],
        "country_code": ["us", "USA", "U1", "ÉÉ", *odd], "phone_number_type": ["toll-free", "mobile", "fax", *odd],
        "status": ["pending", "released", "gone", *odd], "is_truedy_managed": [False, 1, *odd],
        "provider": ["twilio", "telnyx", "acme", *odd], "features": [["voice"], ["voice", 7], *odd],
        "cost_information": [{"upfront_cost": "0", "monthly_cost": "-1.15", "currency": "USD"},
                             {"upfront_cost": "-1", "monthly_cost": "1.15", "currency": "USD"},
                             {"upfront_cost": "1.00", "monthly_cost": 1.15, "currency": "USD"},
                             {"upfront_cost": "1.00", "monthly_cost": "1.15", "currency": "usd"},
                             {"upfront_cost": "1.00", "monthly_cost": "1.15"}, *odd],
        "label": [None, 7, "missing"], "purchased_at": [*times, *odd], "released_at": ["2026-11-03T14:05:09Z", *times, *odd],
        "assignments": [[], [inbound], [usual["assignments"][0], inbound], [inbound, inbound],
                        [usual["assignments"][0], inbound, inbound], [{"agent_id": "", "assignment_type": "inbound",
                                                                      "assigned_at": "2025-08-03T01:31:18Z"}],
                        [inbound | {"assigned_at": "2025-08-03T03:31:18+02:00"}], [None], *odd],
        "monthly_fee": ["a field the contract may add"],
    }

    def changed(changes):
        return _changed(usual, changes)

    def same(record):
        served = json.dumps(record).encode()
        try:
            careful = repr(parse_number(orjson.loads(served)))
        except RecordError:
            careful = None
        fast = plain_number(msgspec.Raw(served))
        assert fast is None or repr(fast) == careful

    assert repr(plain_number(json.dumps(usual).encode())) == repr(parse_number(usual))
    for name, values in unusual.items():
        for value in values:
            same(changed([(name, value)]))

    @settings(max_examples=300)
    @given(st.lists(_one_change(unusual), max_size=3))
    def check(changes):
        same(changed(changes))

    check()


def test_a_plain_calls_page_never_takes_the_careful_way(monkeypatch):
    from reconcile.truedy import wire

    def refuse(raw):
        raise AssertionError("the careful way")

    monkeypatch.setattr(wire, "parse_call", refuse)
    raw = {"id": "call_1", "agent_id": "agt_1", "number_id": "num_1", "direction": "inbound", "from_number": None,
           "started_at": "2026-11-03T14:05:09Z", "ended_at": "2026-11-03T14:07:09Z", "duration_seconds": 120,
           "cost": {"amount": "0.0300", "currency": "USD"}}
    calls, issues = wire.parse_calls(_page([raw, raw | {"id": "call_2", "number_id": None}]))
    assert issues == []
    assert [(c.id, c.number_id, c.to_number, c.started_at.isoformat(), str(c.cost_amount)) for c in calls] == [
        ("call_1", "num_1", None, "2026-11-03T14:05:09+00:00", "0.0300"),
        ("call_2", None, None, "2026-11-03T14:05:09+00:00", "0.0300")]


@pytest.mark.parametrize("bent", [b', "z": 1e400}', b', "z": "\xff"}'])
def test_a_call_orjson_cannot_read_is_refused_even_in_a_field_the_contract_does_not_name(bent):
    """msgspec would skip such a field unread; the page path takes no unknown field, so orjson reads the
    record, and refuses it, as it refused the page before (the client says: not JSON)."""
    import msgspec

    from reconcile.truedy.wire import parse_calls

    raw = {"id": "call_1", "agent_id": "agt_1", "number_id": "num_1", "direction": "inbound",
           "started_at": "2026-11-03T14:05:09Z", "ended_at": "2026-11-03T14:07:09Z", "duration_seconds": 120,
           "cost": {"amount": "0.0300", "currency": "USD"}}
    served = json.dumps(raw).encode()[:-1] + bent
    with pytest.raises(orjson.JSONDecodeError):
        parse_calls([msgspec.Raw(served)])


def test_timestamps_read_as_a_column_are_read_as_one_by_one():
    from reconcile.clock import parse_timestamp, parse_timestamps

    usual = ["2026-11-03T14:05:09Z", "2025-01-31T00:00:00Z"]
    assert repr(parse_timestamps(usual)) == repr([parse_timestamp(t) for t in usual])
    mixed = [*usual, "2026-11-03T16:05:09+02:00"]
    assert repr(parse_timestamps(mixed)) == repr([parse_timestamp(t) for t in mixed])
    assert parse_timestamps([]) == []
    for broken in (["2026-11-03T14:05:09Z", "2026-02-30T14:05:09Z"], ["1969-12-31T23:59:59Z"], ["2026-11-03T14:05:09"]):
        with pytest.raises(ValueError):
            parse_timestamps(broken)


@pytest.mark.parametrize(("amount", "currency", "text"), [
    ("1234.5", "USD", "1,234.50 USD"), ("0.0075", "USD", "0.0075 USD"), ("1200", "JPY", "1,200 JPY"),
    ("-1234567.891", "BHD", "-1,234,567.891 BHD"), ("-0.5", "EUR", "-0.50 EUR"), ("999", "GBP", "999.00 GBP"),
])
def test_money_for_people_has_the_currency_digits_and_thousands_separators(amount, currency, text):
    from reconcile.money import format_money

    assert format_money(Decimal(amount), currency) == text
