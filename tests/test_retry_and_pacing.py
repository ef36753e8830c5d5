"""The retry policy and the pacer are pure enough to test with a fake clock."""

from __future__ import annotations

import datetime as dt
import random
import threading

import httpx
import pytest

from reconcile.retry import RetryPolicy, parse_retry_after
from reconcile.truedy.pacing import RatePacer

NOW = dt.datetime(2026, 11, 27, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("method", "status", "retried"), [
    ("GET", 429, True), ("GET", 500, True), ("GET", 502, True), ("GET", 503, True), ("GET", 504, True),
    ("GET", 400, False), ("GET", 401, False), ("GET", 404, False), ("GET", 501, False),
    ("DELETE", 503, True), ("POST", 503, False), ("POST", 429, True),
])
def test_which_answers_are_retried(method, status, retried):
    assert RetryPolicy().should_retry(method, status, None) is retried


def test_which_transport_errors_are_retried():
    policy = RetryPolicy()
    assert policy.should_retry("GET", None, httpx.ReadTimeout("slow"))
    assert policy.should_retry("POST", None, httpx.ConnectError("refused"))
    assert not policy.should_retry("POST", None, httpx.ReadTimeout("slow")), "the server may have acted"
    assert not policy.should_retry("GET", None, ValueError("not ours"))


def test_retry_after_in_seconds_and_as_http_date():
    assert parse_retry_after("7", NOW) == 7.0
    assert parse_retry_after("Fri, 27 Nov 2026 12:00:30 GMT", NOW) == 30.0
    assert parse_retry_after("Fri, 27 Nov 2026 11:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_retry_after_is_capped_and_backoff_grows_capped():
    policy = RetryPolicy(backoff_base_s=1, backoff_cap_s=8, retry_after_cap_s=10)
    rng = random.Random(1)
    assert 10 <= policy.delay_s(1, {"retry-after": "3600"}, NOW, rng) <= 10.05
    ceilings = [max(policy.delay_s(a, None, NOW, random.Random(s)) for s in range(200)) for a in range(1, 7)]
    assert ceilings[0] <= 1 and ceilings[2] <= 4 and max(ceilings) <= 8
    assert ceilings[3] > 4, "the fourth attempt may wait up to 8 s"


class FakeTime:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_pacer_spaces_requests_after_learning_the_limit():
    clock = FakeTime()
    pacer = RatePacer(monotonic=clock.monotonic, sleep=clock.sleep)
    pacer.acquire()
    pacer.observe({"x-ratelimit-limit": "20", "x-ratelimit-remaining": "19", "x-ratelimit-reset": "1"})
    for _ in range(40):
        pacer.acquire()
    assert 2.0 <= clock.now - 100.0 <= 2.2, "40 requests at 20/s take about two seconds"


def test_pacer_holds_everyone_when_the_window_is_spent():
    clock = FakeTime()
    pacer = RatePacer(monotonic=clock.monotonic, sleep=clock.sleep)
    pacer.observe({"x-ratelimit-limit": "1000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "2"})
    pacer.acquire()
    assert clock.now == pytest.approx(102.0)
    pacer.hold(5)
    pacer.acquire()
    assert clock.now == pytest.approx(107.0)


def test_pacing_against_the_sandbox_limiter_stays_near_the_limit_without_429s():
    """Simulated time: the sandbox's one-second-window limiter, 20 ms each way, one request at a time."""
    from reconcile.sandbox.app import RateLimiter

    clock = FakeTime()
    pacer = RatePacer(monotonic=clock.monotonic, sleep=clock.sleep)
    limiter = RateLimiter(monotonic=clock.monotonic)
    rejected = 0
    for _ in range(400):
        pacer.acquire()
        sent = clock.now
        clock.now += 0.01                      # on its way
        admitted, headers = limiter.admit(20)
        clock.now += 0.01                      # the answer on its way back
        rejected += not admitted
        pacer.observe({k.lower(): v for k, v in headers.items()}, sent)
        if not admitted:
            pacer.hold(float(headers["Retry-After"]))
    elapsed = clock.now - 100.0
    assert rejected == 0
    assert elapsed / (400 / 20) <= 1.10, f"{elapsed:.1f} s for 400 requests at 20/s"


def test_requests_started_together_wait_for_the_first_answer_and_meet_no_429():
    """Simulated time: eight workers start at once (a sync's call slices) against the sandbox's limiter,
    20 ms each way. Before the first answer the limit is unknown: had all eight gone, the first window
    would take them on top of a paced second's worth (three 429s here)."""
    import heapq

    from reconcile.sandbox.app import RateLimiter

    clock = FakeTime()
    waits: list[float] = []
    pacer = RatePacer(monotonic=clock.monotonic, sleep=waits.append)  # a worker's wait, not the clock's
    limiter = RateLimiter(monotonic=clock.monotonic)
    events = [(100.0, worker, "free", None) for worker in range(8)]
    order, sent, rejected = 8, 0, 0
    while events:
        clock.now, _, kind, data = heapq.heappop(events)
        order += 1
        if kind == "free" and sent < 400:
            if pacer.awaiting_first_answer:  # acquire() would wait for it: look again a moment later
                heapq.heappush(events, (clock.now + 0.002, order, "free", None))
                continue
            waits.clear()
            pacer.acquire()
            sent += 1
            heapq.heappush(events, (clock.now + sum(waits) + 0.01, order, "arrive", clock.now + sum(waits)))
        elif kind == "arrive":
            admitted, headers = limiter.admit(20)
            heapq.heappush(events, (clock.now + 0.01, order, "answer", (data, admitted, headers)))
        elif kind == "answer":
            left_at, admitted, headers = data
            pacer.observe({k.lower(): v for k, v in headers.items()}, left_at)
            if not admitted:
                rejected += 1
                sent -= 1
                pacer.hold(float(headers["Retry-After"]))
            heapq.heappush(events, (clock.now, order, "free", None))
    assert rejected == 0
    assert (clock.now - 100.0) / (400 / 20) <= 1.10


def test_the_first_answer_frees_the_requests_waiting_for_it():
    pacer = RatePacer()
    pacer.acquire()
    assert pacer.awaiting_first_answer
    released = threading.Event()
    waiter = threading.Thread(target=lambda: (pacer.acquire(), released.set()))
    waiter.start()
    assert not released.wait(0.1), "the second request waits for the first answer"
    pacer.observe({"x-ratelimit-limit": "1000", "x-ratelimit-remaining": "999", "x-ratelimit-reset": "1"})
    assert released.wait(2), "the answer frees it"
    waiter.join()
    assert not pacer.awaiting_first_answer


def test_a_first_request_that_never_answers_holds_the_others_only_until_probe_wait_passes(monkeypatch):
    """On the pacer's own clock: once `PROBE_WAIT_S` has passed since the first request left, the next one
    goes without an answer (an hour here, so a wait on any other clock would hang the test, not slow it)."""
    from reconcile.truedy import pacing

    monkeypatch.setattr(pacing, "PROBE_WAIT_S", 3600.0)
    clock = FakeTime()
    pacer = RatePacer(monotonic=clock.monotonic, sleep=clock.sleep)
    pacer.acquire()
    clock.now += 3600.0
    went = threading.Event()
    second = threading.Thread(target=lambda: (pacer.acquire(), went.set()), daemon=True)
    second.start()
    assert went.wait(10), "the second request went once the probe's wait had passed"
    assert pacer.awaiting_first_answer, "no answer came: the limit is still unknown"
