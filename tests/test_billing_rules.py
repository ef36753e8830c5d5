"""The contract's billing rules as pure functions: renewal dates, releases, prices in force."""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile.analysis.billing import (
    MONTHLY_FEE,
    UPFRONT_FEE,
    NumberFacts,
    PriceObservation,
    expected_fees,
    price_at,
    renewal_charged,
    renewal_starting_in,
)
from reconcile.period import Period, add_months
from reconcile.sandbox import billing as sandbox_billing

UTC = dt.UTC
days = st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2030, 12, 31))
# the days where clamping matters, drawn often
month_ends = st.builds(lambda y, m, back: dt.date(y, m, calendar.monthrange(y, m)[1]) - dt.timedelta(days=back),
                       st.integers(2020, 2030), st.integers(1, 12), st.integers(0, 3))
purchase_days = st.one_of(days, month_ends, st.sampled_from([dt.date(2024, 2, 29), dt.date(2025, 1, 31),
                                                             dt.date(2026, 1, 31), dt.date(2026, 3, 30)]))


def managed(purchased_at: dt.datetime, released_at: dt.datetime | None = None, cost: str = "1.15") -> NumberFacts:
    return NumberFacts("num_A", "+12125550100", "truedy", True, "USD", Decimal("1.00"), purchased_at, released_at,
                       (PriceObservation(purchased_at, None, Decimal(cost)),))


@given(purchase_days, st.integers(0, 40))
def test_renewals_fall_on_the_purchase_day_or_the_last_day_of_a_shorter_month(purchased, months):
    period = Period.containing(purchased).shifted(months)
    start, end = renewal_starting_in(purchased, period)
    assert (start.year, start.month) == (period.year, period.month)
    assert start.day == min(purchased.day, calendar.monthrange(period.year, period.month)[1])
    assert end == renewal_starting_in(purchased, period.shifted(1))[0]  # periods tile: no gap, no overlap
    assert 28 <= (end - start).days <= 31


@given(purchase_days, st.integers(1, 40))
def test_no_renewal_before_the_purchase_month(purchased, months):
    assert renewal_starting_in(purchased, Period.containing(purchased).shifted(-months)) is None


@given(purchase_days, st.integers(-30, 60))
def test_month_arithmetic_agrees_with_the_sandbox_written_apart(day, months):
    assert add_months(day, months) == sandbox_billing.add_months(day, months)


def test_the_31st_renews_on_each_months_last_day_and_back_to_the_31st():
    purchased = dt.date(2026, 1, 31)
    starts = [renewal_starting_in(purchased, Period(2026, m))[0] for m in range(1, 6)]
    assert starts == [dt.date(2026, 1, 31), dt.date(2026, 2, 28), dt.date(2026, 3, 31), dt.date(2026, 4, 30),
                      dt.date(2026, 5, 31)]
    leap = renewal_starting_in(dt.date(2024, 2, 29), Period(2025, 2))
    assert leap == (dt.date(2025, 2, 28), dt.date(2025, 3, 29))


@given(purchase_days, st.integers(0, 24), st.integers(1, 86399))
def test_a_release_on_a_renewal_day_keeps_that_renewal_and_stops_the_next(purchased, months, second):
    bought_at = dt.datetime.combine(purchased, dt.time(12), UTC)
    period = Period.containing(purchased).shifted(months)
    start, end = renewal_starting_in(purchased, period)
    released_at = dt.datetime.combine(start, dt.time(0), UTC) + dt.timedelta(seconds=second)
    if released_at <= bought_at:
        released_at = bought_at + dt.timedelta(seconds=1)
    number = managed(bought_at, released_at)
    fees = [f for f in expected_fees(number, period) if f.type == MONTHLY_FEE]
    assert [(f.service_period_start, f.service_period_end) for f in fees] == [(start, end)]
    assert not [f for f in expected_fees(number, period.shifted(1)) if f.type == MONTHLY_FEE]


@given(purchase_days, st.integers(1, 24))
def test_only_a_release_strictly_before_the_renewal_instant_stops_it(purchased, months):
    """Service periods are half-open from 00:00:00 UTC of the renewal day: a release at that very
    instant is inside the new period, which is owed; one microsecond earlier stops the renewal."""
    period = Period.containing(purchased).shifted(months)
    start, end = renewal_starting_in(purchased, period)
    renewal = dt.datetime.combine(start, dt.time(0), UTC)
    bought_at = dt.datetime.combine(purchased, dt.time(0, 0, 1), UTC)
    assert renewal_charged(start, renewal)
    at_instant = [f for f in expected_fees(managed(bought_at, renewal), period) if f.type == MONTHLY_FEE]
    assert [(f.service_period_start, f.service_period_end) for f in at_instant] == [(start, end)]
    just_before = renewal - dt.timedelta(microseconds=1)
    assert not renewal_charged(start, just_before)
    assert expected_fees(managed(bought_at, just_before), period) == []


def test_a_fee_for_the_period_released_at_its_first_instant_is_owed_not_after_release():
    """The invoice check agrees: billed for the period the release fell in is right; a period that
    began after the release is fee_after_release."""
    from reconcile.analysis.invoices import reconcile_invoices
    from tests.test_monthly_review import fee, frames

    october = Period(2026, 10)
    at_instant = managed(dt.datetime(2026, 3, 15, 8, tzinfo=UTC), dt.datetime(2026, 10, 15, tzinfo=UTC))
    headers, lines = frames([fee("inv_usd", "li_1", "num_A", "2026-10-15", "2026-11-15", "1.15")])
    assert reconcile_invoices(october, headers, lines, {"num_A": at_instant}, None).clean
    earlier = managed(dt.datetime(2026, 3, 15, 8, tzinfo=UTC),
                      dt.datetime(2026, 10, 15, tzinfo=UTC) - dt.timedelta(microseconds=1))
    found = reconcile_invoices(october, headers, lines, {"num_A": earlier}, None).findings
    assert list(found["issue"]) == ["fee_after_release"]


@pytest.mark.parametrize(("offset", "billed"), [(dt.timedelta(0), True), (dt.timedelta(microseconds=-1), False)])
def test_the_sandbox_bills_the_period_a_release_at_its_first_instant_falls_in(offset, billed):
    from reconcile.sandbox import generate_account

    account = generate_account(seed=3, numbers=40, start=dt.datetime(2026, 11, 20, tzinfo=UTC))

    def october_fees(number_id: str) -> list[str]:
        return [line["service_period_start"] for invoice_id, items in sandbox_billing.build(account).lines.items()
                if invoice_id.startswith("inv_202610_") for line in items
                if line["number_id"] == number_id and line["type"] == MONTHLY_FEE]

    number = next(n for n in account.numbers if n.is_truedy_managed and n.status != "released"
                  and n.purchased_at < dt.datetime(2026, 6, 1, tzinfo=UTC) and october_fees(n.id))
    start, _ = renewal_starting_in(number.purchased_at.date(), Period(2026, 10))
    number.status, number.released_at = "released", dt.datetime.combine(start, dt.time(0), UTC) + offset
    assert (october_fees(number.id) == [start.isoformat()]) is billed


@given(purchase_days, st.integers(0, 86399))
def test_the_purchase_month_holds_the_upfront_fee_and_the_first_monthly_fee(purchased, second):
    bought_at = dt.datetime.combine(purchased, dt.time(0), UTC) + dt.timedelta(seconds=second)
    fees = expected_fees(managed(bought_at), Period.containing(purchased))
    assert sorted((f.type, f.service_period_start, f.amount) for f in fees) == [
        (MONTHLY_FEE, purchased, Decimal("1.15")), (UPFRONT_FEE, purchased, Decimal("1.00"))]
    later = expected_fees(managed(bought_at), Period.containing(purchased).shifted(1))
    assert [f.type for f in later] == [MONTHLY_FEE]


@settings(max_examples=50)
@given(purchase_days, st.integers(0, 12))
def test_imported_numbers_never_owe_a_truedy_fee(purchased, months):
    number = NumberFacts("num_B", "+12125550101", "twilio", False, None, None,
                         dt.datetime.combine(purchased, dt.time(9), UTC), None)
    assert expected_fees(number, Period.containing(purchased).shifted(months)) == []


def test_the_price_in_force_comes_from_the_version_history():
    day = dt.timedelta(days=1)
    t0 = dt.datetime(2026, 9, 1, 2, 30, tzinfo=UTC)
    history = (PriceObservation(t0, t0 + 9 * day, Decimal("1.15")),          # seen nightly until 10 Sep
               PriceObservation(t0 + 10 * day, None, Decimal("1.25")))       # first seen 11 Sep
    assert price_at(history, t0 - 30 * day) == (Decimal("1.15"), (Decimal("1.15"),))  # before the first sync
    assert price_at(history, t0 + 5 * day) == (Decimal("1.15"), (Decimal("1.15"),))
    # between the last sighting of 1.15 and the first of 1.25, either could have been in force
    assert price_at(history, t0 + 9 * day + dt.timedelta(hours=3)) == (Decimal("1.15"), (Decimal("1.15"), Decimal("1.25")))
    assert price_at(history, t0 + 20 * day) == (Decimal("1.25"), (Decimal("1.25"),))


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "26-10", "2026-1", "october", ""])
def test_a_bad_period_is_refused_with_the_expected_shape(text):
    with pytest.raises(ValueError, match="YYYY-MM"):
        Period.parse(text)


def test_periods_are_utc_months_with_exclusive_ends():
    period = Period.parse("2024-02")
    assert (period.first, period.last, period.after) == (dt.date(2024, 2, 1), dt.date(2024, 2, 29), dt.date(2024, 3, 1))
    assert period.end == dt.datetime(2024, 3, 1, tzinfo=UTC) and str(period.shifted(-2)) == "2023-12"
