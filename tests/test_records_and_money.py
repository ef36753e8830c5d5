"""Typed records: Decimal money, UTC timestamps, unknown fields ignored, bad fields named."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

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


def _outcome(parse, raw):
    from reconcile.truedy.fields import RecordError

    try:
        return parse(raw)
    except RecordError as exc:
        return ("refused", exc.field_name, exc.reason)


def test_the_direct_call_path_never_answers_differently_from_the_careful_one():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from reconcile.truedy.records import _careful_call, parse_call

    missing = object()
    def field(*good):
        return st.one_of(st.sampled_from(good), st.sampled_from([None, "", 7, True, [], {}, missing]))

    calls = st.fixed_dictionaries({
        "id": field("call_0000000001"), "agent_id": field("agt_1"), "number_id": field("num_1", None),
        "direction": field("inbound", "outbound", "sideways"), "from_number": field("+12125550100", None),
        "to_number": field("+12125550101"), "started_at": field("2026-11-03T14:05:09Z", "2026-11-03T16:05:09+02:00",
                                                                "2026-11-03 14:05:09", "yesterday"),
        "ended_at": field("2026-11-03T14:07:09Z"), "duration_seconds": field(120, 0, -1, 1.5),
        "cost": st.one_of(st.fixed_dictionaries({"amount": field("0.0300", "1,5", "NaN", "0.0000000001"),
                                                 "currency": field("USD", "usd", "EURO")}),
                          st.sampled_from([None, "0.03", missing])),
        "extra": field("fields the contract may add"),
    }).map(lambda d: {k: v for k, v in d.items() if v is not missing})

    @settings(max_examples=400)
    @given(calls)
    def check(raw):
        assert _outcome(parse_call, raw) == _outcome(_careful_call, raw)

    check()


@pytest.mark.parametrize(("amount", "currency", "text"), [
    ("1234.5", "USD", "1,234.50 USD"), ("0.0075", "USD", "0.0075 USD"), ("1200", "JPY", "1,200 JPY"),
    ("-1234567.891", "BHD", "-1,234,567.891 BHD"), ("-0.5", "EUR", "-0.50 EUR"), ("999", "GBP", "999.00 GBP"),
])
def test_money_for_people_has_the_currency_digits_and_thousands_separators(amount, currency, text):
    from reconcile.money import format_money

    assert format_money(Decimal(amount), currency) == text
