"""The contract's billing rules as pure functions: which number fees a month should hold.

From the API contract: a Truedy-managed number pays its `upfront_cost` once at purchase
and its `monthly_cost` at every renewal. Renewals fall on the purchase day-of-month
(the month's last day when it is shorter), starting on the purchase date; a fee's
service period runs to the next renewal (exclusive) and belongs to the invoice of the
month it starts in. A release stops the renewals after it, with no proration and no
refund. Imported numbers carry no Truedy fee.

Renewal instants are the renewal day's midnight UTC, as invoices carry dates.
The price in force at a renewal comes from the number's observed version history;
when the price changed between two observations around the renewal, either price is
accepted (we cannot know which side of the renewal the change fell on).
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import NamedTuple

from reconcile.period import Period, add_months, midnight

MONTHLY_FEE = "number_monthly_fee"
UPFRONT_FEE = "number_upfront_fee"
FEE_TYPES = (MONTHLY_FEE, UPFRONT_FEE)


@functools.lru_cache(maxsize=4096)  # numbers bought on one day share it: a review asks once per day bought
def renewal_starting_in(purchased: dt.date, period: Period) -> tuple[dt.date, dt.date] | None:
    """The (start, exclusive end) of the renewal that starts in `period`; None before the purchase month.

    Each renewal counts from the purchase date itself, never from the previous renewal,
    so a number bought on 31 January renews on 28 (or 29) February and again on 31 March.
    """
    months = (period.year - purchased.year) * 12 + period.month - purchased.month
    if months < 0:
        return None
    return add_months(purchased, months), add_months(purchased, months + 1)


def renewal_charged(start: dt.date, released_at: dt.datetime | None) -> bool:
    """A renewal is charged unless the number was released strictly before the renewal day began.

    Service periods are half-open and start at 00:00:00 UTC: a release at that very instant
    falls inside the new period, which is owed (no refund for the period of the release).
    """
    return released_at is None or released_at >= midnight(start)


class PriceObservation(NamedTuple):
    """A monthly price seen from `first_seen` (a run's as_of) to `last_seen` (None: still current).

    This and the other records a month's review makes one of per number are named tuples: made
    at C speed (a frozen dataclass sets each field through `object.__setattr__`).
    """

    first_seen: dt.datetime
    last_seen: dt.datetime | None
    monthly_cost: Decimal


def price_at(observations: tuple[PriceObservation, ...], when: dt.datetime) -> tuple[Decimal, tuple[Decimal, ...]]:
    """The price in force at `when` and every price that could have been, oldest observation first.

    Before the first observation the first observed price is assumed. When the price
    changed between the last observation at or before `when` and the next one after
    it, both the old and the new price are possible.
    """
    if not observations:
        raise ValueError("no price observed")
    if len(observations) == 1:  # most numbers: one price, in force at any time
        return observations[0].monthly_cost, (observations[0].monthly_cost,)
    index = 0
    for i, observation in enumerate(observations):
        if observation.first_seen <= when:
            index = i
    current = observations[index]
    accepted = [current.monthly_cost]
    if index + 1 < len(observations) and current.first_seen <= when:
        following = observations[index + 1]
        if current.last_seen is not None and current.last_seen < when < following.first_seen:
            accepted.append(following.monthly_cost)
    return current.monthly_cost, tuple(dict.fromkeys(accepted))


def merge_observations(observations: list[PriceObservation]) -> tuple[PriceObservation, ...]:
    """Oldest first, with consecutive observations of the same price joined into one."""
    if len(observations) < 2:  # most numbers: one version, one price
        return tuple(observations)
    merged: list[PriceObservation] = []
    for observation in sorted(observations, key=lambda o: o.first_seen):
        if merged and merged[-1].monthly_cost == observation.monthly_cost:
            merged[-1] = PriceObservation(merged[-1].first_seen, observation.last_seen, observation.monthly_cost)
        else:
            merged.append(observation)
    return tuple(merged)


class NumberFacts(NamedTuple):
    """What billing needs to know about one number, from the store's history."""

    number_id: str
    phone_number: str | None
    provider: str
    is_truedy_managed: bool
    currency: str | None
    upfront_cost: Decimal | None
    purchased_at: dt.datetime
    released_at: dt.datetime | None
    prices: tuple[PriceObservation, ...] = ()


class ExpectedFee(NamedTuple):
    number_id: str
    phone_number: str | None
    type: str
    service_period_start: dt.date
    service_period_end: dt.date
    amount: Decimal
    accepted: tuple[Decimal, ...]
    currency: str

    @property
    def key(self) -> tuple[str, str, dt.date]:
        """What identifies the fee on an invoice: number, fee type, service period start."""
        return self.number_id, self.type, self.service_period_start


def expected_fees(number: NumberFacts, period: Period) -> list[ExpectedFee]:
    """The number fees that `period`'s invoice should hold for `number` (none for imported numbers)."""
    if not number.is_truedy_managed or number.currency is None:
        return []
    fees = []
    bought = number.purchased_at.astimezone(dt.UTC).date()
    if period.first <= bought <= period.last and number.upfront_cost is not None:
        fees.append(ExpectedFee(number.number_id, number.phone_number, UPFRONT_FEE, bought, add_months(bought, 1),
                                number.upfront_cost, (number.upfront_cost,), number.currency))
    renewal = renewal_starting_in(bought, period)
    if renewal is not None and renewal_charged(renewal[0], number.released_at) and number.prices:
        amount, accepted = price_at(number.prices, midnight(renewal[0]))
        fees.append(ExpectedFee(number.number_id, number.phone_number, MONTHLY_FEE, renewal[0], renewal[1],
                                amount, accepted, number.currency))
    return fees


def held_during(purchased_at: dt.datetime, released_at: dt.datetime | None, start: dt.datetime, end: dt.datetime) -> bool:
    """The number was owned at some moment of [start, end)."""
    return purchased_at < end and (released_at is None or released_at > start)
