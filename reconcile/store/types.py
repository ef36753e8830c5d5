"""Column types that keep money exact and time in UTC on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.types import TypeDecorator

from reconcile.money import from_nanos, to_nanos


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
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite text written by another tool
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=dt.UTC)
