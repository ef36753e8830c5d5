"""Time in one place: parsing contract timestamps and the injectable clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from operator import itemgetter

UTC = dt.UTC

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    return dt.datetime.now(UTC)


MIN_YEAR, MAX_YEAR = 1970, 2999  # anything outside is a broken value, and date arithmetic stays in range


def parse_timestamp(text: object) -> dt.datetime:
    """An RFC 3339 timestamp as an aware UTC datetime; ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"timestamp must be a string, got {type(text).__name__}")
    if len(text) == 20 and text[19] == "Z" and text[10] == "T":  # the API's usual form: read as it is, already UTC
        value = dt.datetime.fromisoformat(text)
        if MIN_YEAR <= value.year <= MAX_YEAR:
            return value
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text[:40]!r}")
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"timestamp out of range ({MIN_YEAR} to {MAX_YEAR}): {text[:40]!r}")
    return value.astimezone(UTC)


def parse_timestamps(texts: Sequence[str]) -> list[dt.datetime]:
    """`parse_timestamp` over a column: the same values, or the same ValueError.

    A column all in the API's usual form (`2026-11-03T14:05:09Z`) is read by C-speed maps
    and its years checked by its earliest and latest (500 times: 0.23 ms -> 0.10-0.12 ms
    against `map(parse_timestamp, ...)`); that form is the one `parse_timestamp` reads by
    `fromisoformat` alone. Any other column goes value by value.
    """
    if (set(map(len, texts)) == {20} and set(map(itemgetter(10), texts)) == {"T"}
            and set(map(itemgetter(19), texts)) == {"Z"}):
        values = list(map(dt.datetime.fromisoformat, texts))  # a date that does not exist: ValueError, as one by one
        if MIN_YEAR <= min(values).year and max(values).year <= MAX_YEAR:
            return values
    return list(map(parse_timestamp, texts))


def parse_date(text: object) -> dt.date:
    if not isinstance(text, str):
        raise ValueError(f"date must be a string, got {type(text).__name__}")
    return dt.date.fromisoformat(text)


def format_timestamp(value: dt.datetime | None) -> str:
    """RFC 3339 UTC with a Z, whole seconds; '' for None."""
    if value is None:
        return ""
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_as_of(text: str) -> dt.datetime:
    """A user's --as-of: an RFC 3339 timestamp, or a date meaning the end of that day UTC."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time(23, 59, 59), UTC)
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a date or RFC 3339 timestamp: {text!r}") from None
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"{text!r} is out of range: a run is dated between {MIN_YEAR} and {MAX_YEAR}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
