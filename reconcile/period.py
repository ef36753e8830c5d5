"""Calendar months and the UTC instants that bound them: the unit of an invoice and a review."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from dataclasses import dataclass

PERIOD = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, order=True)
class Period:
    """One calendar month, the unit of an invoice."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        match = PERIOD.fullmatch(text.strip())
        if not match or not 1 <= int(match.group(2)) <= 12 or not 1970 <= int(match.group(1)) <= 2999:
            raise ValueError(f"not a month: {text[:20]!r} (expected YYYY-MM, e.g. 2026-10)")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, moment: dt.datetime | dt.date) -> Period:
        return cls(moment.year, moment.month)

    def shifted(self, months: int) -> Period:
        year, zero_month = divmod(self.year * 12 + self.month - 1 + months, 12)
        return Period(year, zero_month + 1)

    @functools.cached_property  # a review asks each number's renewal against the month's days
    def first(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @functools.cached_property
    def last(self) -> dt.date:
        return dt.date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    @property
    def after(self) -> dt.date:
        """The first day of the next month: the exclusive end."""
        return self.shifted(1).first

    @property
    def start(self) -> dt.datetime:
        return midnight(self.first)

    @property
    def end(self) -> dt.datetime:
        return midnight(self.after)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), dt.UTC)


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` moved by whole months; the 31st becomes the last day of a shorter month."""
    year, zero_month = divmod(day.year * 12 + day.month - 1 + months, 12)
    month = zero_month + 1
    if day.day <= 28:
        return dt.date(year, month, day.day)
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
