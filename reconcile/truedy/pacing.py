"""Client-side pacing from the X-RateLimit-* headers, so that 429s stay rare.

The contract allows about `X-RateLimit-Limit` requests a second per key. The pacer
spaces request starts a little more than 1/limit apart across all threads, stops
everyone until the window resets when `X-RateLimit-Remaining` reaches 0, and after a
429 holds every thread for the `Retry-After` the server asked for.

`X-RateLimit-Reset` counts whole seconds, so for a one-second window it always says 1
even when the window ends 50 ms later. Pacing near the limit, the window fills now and
then, and waiting the full second each time would cost a fifth of the throughput. So
the pacer learns where windows begin (the answer whose Remaining is Limit - 1 was the
first of its window) and, for windows of a second, waits only until the window that
counted the request ends (not at all when it already has).

Until the first answer arrives the limit is unknown: the first request goes alone, and the
others wait for its answer (at most `PROBE_WAIT_S`). Were they all to start at once (a sync
starts its eight call slices together), the first window would take them on top of a
paced second's worth: 429s on the first page of a throttled sync.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

SAFETY = 1.04  # pace 4% under the advertised limit: clocks and windows never align exactly
MARGIN_S = 0.05  # after a learnt window boundary, for the latency we cannot see
PROBE_WAIT_S = 1.0  # the longest the first answer is waited for (a request that never answers frees the rest)


class RatePacer:
    """`max_wait_s` caps any one wait the headers can ask for (a `Reset` of 10^9 s is a fault, not a wait)."""

    def __init__(
        self, monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
        max_wait_s: float = 60.0,
    ) -> None:
        self._lock = threading.Lock()
        self._answered = threading.Event()  # set by the first answer observed
        self._probe_sent_at: float | None = None
        self._monotonic = monotonic
        self._sleep = sleep
        self._interval = 0.0
        self._next_start = 0.0
        self._blocked_until = 0.0
        self._window_start: float | None = None
        self.max_wait_s = max_wait_s
        self.waited_s = 0.0

    def acquire(self, deadline: float | None = None) -> None:
        """Block until this thread may start a request.

        With a `deadline` (on this pacer's clock) that the wait would pass, nothing is
        reserved and nothing slept: `PacingPastDeadline` says how long it would have been.
        """
        self._wait_for_first_answer(deadline)
        with self._lock:
            now = self._monotonic()
            start = max(now, self._next_start, self._blocked_until)
            if deadline is not None and start > deadline:
                raise PacingPastDeadline(start - now)
            self._next_start = start + self._interval
        if start > now:
            self.waited_s += start - now
            self._sleep(start - now)

    @property
    def awaiting_first_answer(self) -> bool:
        """The first request is out and no answer has come back: `acquire` waits (at most `PROBE_WAIT_S`)."""
        return self._probe_sent_at is not None and not self._answered.is_set()

    def _wait_for_first_answer(self, deadline: float | None) -> None:
        """The first request goes at once; the others wait until an answer says the limit (or for `PROBE_WAIT_S`)."""
        if self._answered.is_set():
            return
        with self._lock:
            if self._probe_sent_at is None:
                self._probe_sent_at = self._monotonic()
                return
            wait = self._probe_sent_at + PROBE_WAIT_S - self._monotonic()
            if deadline is not None:
                wait = min(wait, deadline - self._monotonic())
        if wait > 0:
            self._answered.wait(wait)

    def observe(self, headers: Mapping[str, str], sent_at: float | None = None) -> None:
        """Learn the limit and the window from an answer's headers (`sent_at`: when its request left)."""
        self._answered.set()
        limit = _number(headers.get("x-ratelimit-limit"))
        remaining = _number(headers.get("x-ratelimit-remaining"))
        reset = _number(headers.get("x-ratelimit-reset"))
        with self._lock:
            now = self._monotonic()
            if limit and limit > 0:
                self._interval = SAFETY / limit
                if remaining == limit - 1:  # the first request of a window: it began about then
                    self._window_start = now if sent_at is None else (sent_at + now) / 2
            if remaining is not None and remaining <= 0 and reset is not None:
                until = now + min(max(reset, 0.0), self.max_wait_s)
                if reset <= 1 and self._window_start is not None:
                    # the window this request was counted in ends a whole number of seconds after
                    # a known window start; if it has ended already, the budget is back
                    counted = now if sent_at is None else (sent_at + now) / 2
                    ends = self._window_start + math.floor(counted - self._window_start) + 1
                    until = min(until, ends + MARGIN_S)
                self._blocked_until = max(self._blocked_until, until)

    def hold(self, seconds: float) -> None:
        """Keep every thread from starting a request for `seconds` (after a 429)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._monotonic() + min(seconds, self.max_wait_s))


class PacingPastDeadline(Exception):  # noqa: N818 - a signal to the client, which raises RetriesExhausted
    """The rate limit would hold the next request past the run's deadline."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"{wait_s:.0f} s")
        self.wait_s = wait_s


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
