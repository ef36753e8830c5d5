"""The retry policy, as data in one place: for the Truedy API and the mail server alike.

How long to wait is shared: the server's `Retry-After` when it sent one, otherwise
capped exponential backoff with full jitter. For HTTP, which answers are retried (429, 500, 502, 503, 504, transport errors and timeouts),
for which methods (reads and the idempotent DELETE; a POST only when the server
certainly did not act on it: 429 or a failed connect), and how long to wait: the
server's `Retry-After` (seconds or HTTP date) up to a cap, otherwise capped
exponential backoff with full jitter. Pure: the clock and randomness come in.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    retry_after_cap_s: float = 60.0
    retry_statuses: frozenset[int] = field(default=frozenset({429, 500, 502, 503, 504}))
    retry_exceptions: tuple[type[Exception], ...] = (httpx.TransportError,)

    def should_retry(self, method: str, status: int | None, exc: Exception | None) -> bool:
        """Whether a request that got `status` (or raised `exc`) may be sent again."""
        if exc is not None:
            if not isinstance(exc, self.retry_exceptions):
                return False
            return method in IDEMPOTENT_METHODS or isinstance(exc, httpx.ConnectError)
        if status not in self.retry_statuses:
            return False
        return method in IDEMPOTENT_METHODS or status == 429

    def delay_s(
        self, attempt: int, headers: Mapping[str, str] | None, now: dt.datetime, rng: random.Random
    ) -> float:
        """Seconds to wait before attempt number `attempt + 1` (attempt counts from 1)."""
        retry_after = parse_retry_after(headers.get("retry-after") if headers else None, now)
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap_s) + rng.uniform(0, 0.05)
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * (2 ** (attempt - 1)))
        return rng.uniform(0, ceiling)


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """`Retry-After` as seconds from `now`: whole seconds or an HTTP date; None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())
