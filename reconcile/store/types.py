"""Column types that keep money exact and time in UTC on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, DateTime, func, type_coerce
from sqlalchemy.types import TypeDecorator

from reconcile.money import from_nanos, to_nanos

NANOS_PER_UNIT = 10**9


class Money(TypeDecorator[Decimal]):
    """A Decimal stored as integer nano-units (10^-9): exact, and summable in SQL."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"money must be a Decimal, got {type(value).__name__}")
        return to_nanos(value)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else from_nanos(int(value))


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime stored as naive UTC; read back aware (tzinfo=UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        given: dt.datetime = value
        if given.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return given.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite text written by another tool
            value = dt.datetime.fromisoformat(value)
        stored: dt.datetime = value
        return stored.replace(tzinfo=dt.UTC)


def money_sum(column: Any, label: str) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """SUM of a Money column that cannot overflow a 64-bit integer on any engine.

    Whole units and nano remainders are summed apart (both engines divide integers toward
    zero, so units * 10^9 + remainder is the value again, negatives included); each part
    would need billions of rows to overflow. `money_total` puts the two back together.
    """
    nanos = type_coerce(column, BigInteger)
    units = func.sum(nanos // NANOS_PER_UNIT, type_=BigInteger)
    rest = func.sum(nanos % NANOS_PER_UNIT, type_=BigInteger)
    return units.label(f"{label}_units"), rest.label(f"{label}_nanos")


def money_total(units: Any, rest: Any) -> Decimal | None:
    """The exact Decimal of a `money_sum` pair; None when the sum was over no rows."""
    if units is None and rest is None:
        return None
    return from_nanos(int(units or 0) * NANOS_PER_UNIT + int(rest or 0))


def new_id(primary_key: Sequence[Any] | None) -> int:
    """The id the database gave a row just inserted (`result.inserted_primary_key`)."""
    if not primary_key or primary_key[0] is None:
        raise RuntimeError("the database returned no id for the row just inserted")
    return int(primary_key[0])
