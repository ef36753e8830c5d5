"""Client-side pacing from the X-RateLimit-* headers, so that 429s stay rare.

The contract allows about `X-RateLimit-Limit` requests a second per key. The pacer
spaces request starts a little more than 1/limit apart across all threads, stops
everyone until the window resets when `X-RateLimit-Remaining` reaches 0, and after a
429 holds every thread for the `Retry-After` the server asked for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

SAFETY = 1.04  # pace 4% under the advertised limit: clocks and windows never align exactly


class RatePacer:
    def __init__(
        self, monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._sleep = sleep
        self._interval = 0.0
        self._next_start = 0.0
        self._blocked_until = 0.0
        self.waited_s = 0.0

    def acquire(self) -> None:
        """Block until this thread may start a request."""
        with self._lock:
            now = self._monotonic()
            start = max(now, self._next_start, self._blocked_until)
            self._next_start = start + self._interval
        if start > now:
            self.waited_s += start - now
            self._sleep(start - now)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn the limit and the window from an answer's headers."""
        limit = _number(headers.get("x-ratelimit-limit"))
        remaining = _number(headers.get("x-ratelimit-remaining"))
        reset = _number(headers.get("x-ratelimit-reset"))
        with self._lock:
            if limit and limit > 0:
                self._interval = SAFETY / limit
            if remaining is not None and remaining <= 0 and reset is not None:
                self._blocked_until = max(self._blocked_until, self._monotonic() + reset)

    def hold(self, seconds: float) -> None:
        """Keep every thread from starting a request for `seconds` (after a 429)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._monotonic() + seconds)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
