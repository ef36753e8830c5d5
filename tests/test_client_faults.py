"""Retries, pacing, auth, drift and malformed records, over real HTTP."""

from __future__ import annotations

import datetime as dt
import socket

import pytest

from reconcile.errors import AuthError, ContractError, RetriesExhausted
from reconcile.truedy import RetryPolicy, TruedyClient, make_http_client
from reconcile.truedy.pacing import RatePacer


class IgnoringPacer(RatePacer):
    """A pacer that never learns the limit, so the server's 429s are met for real."""

    def observe(self, headers, sent_at=None):  # noqa: D102
        return None


def live_ids(account):
    return {n.id for n in account.numbers if n.status in ("active", "pending")}


def test_rate_limited_answers_are_retried_after_retry_after(make_sandbox, make_client):
    server = make_sandbox(numbers=150, rate_limit=6)
    client = make_client(server, page_size=10, max_concurrency=6, pacer=IgnoringPacer())
    listing = client.list_numbers()
    assert {r.id for r in listing.records} == live_ids(server.account)
    assert client.stats.by_status[429] > 0
    assert server.app.state.limiter.rejected == client.stats.by_status[429]


def test_pacing_from_ratelimit_headers_keeps_429s_rare(make_sandbox, make_client):
    server = make_sandbox(numbers=300, rate_limit=25)
    client = make_client(server, page_size=10, max_concurrency=6)
    listing = client.list_numbers()
    assert {r.id for r in listing.records} == live_ids(server.account)
    assert client.stats.by_status[429] <= 2
    assert client.stats.requests >= 20


def test_transient_5xx_and_proxy_pages_are_retried(make_sandbox, make_client):
    server = make_sandbox(numbers=400, error_rate=0.3)
    client = make_client(server, page_size=20, policy=RetryPolicy(max_attempts=12, backoff_base_s=0.005, backoff_cap_s=0.02))
    listing = client.list_numbers()
    assert {r.id for r in listing.records} == live_ids(server.account)
    assert sum(client.stats.by_status[s] for s in (500, 502, 503, 504)) > 0
    assert client.stats.retries > 0


def test_timeouts_are_retried(make_sandbox, make_client):
    server = make_sandbox(numbers=120, slow_rate=0.3, slow_s=1.0)
    client = make_client(server, page_size=5, timeout_s=0.3,
                         policy=RetryPolicy(max_attempts=15, backoff_base_s=0.005, backoff_cap_s=0.01))
    listing = client.list_numbers()
    assert {r.id for r in listing.records} == live_ids(server.account)
    assert client.stats.retries > 0


def test_retries_exhausted_names_the_endpoint_and_last_status(make_sandbox, make_client):
    server = make_sandbox(numbers=10, error_rate=1.0)
    client = make_client(server, policy=RetryPolicy(max_attempts=3, backoff_base_s=0.001, backoff_cap_s=0.002))
    with pytest.raises(RetriesExhausted) as caught:
        client.list_agents()
    message = str(caught.value)
    assert "GET /agents" in message and "after 3 attempt(s)" in message
    assert any(str(status) in message for status in (500, 502, 503, 504))
    assert client.stats.requests == 3


def test_a_refused_key_says_so_and_never_shows_the_key(make_sandbox, make_client):
    server = make_sandbox(numbers=10)
    wrong = "tk_live_wrong_secret_123456"
    client = make_client(server, api_key=wrong)
    with pytest.raises(AuthError) as caught:
        client.list_numbers()
    assert "TRUEDY_API_KEY" in str(caught.value) and "401" in str(caught.value)
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)
    assert wrong not in repr(client.http.headers)
    assert client.stats.requests == 1, "auth failures are not retried"


def test_an_unreachable_server_is_a_clear_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    http = make_http_client(f"http://127.0.0.1:{port}", "k", timeout_s=1)
    with TruedyClient(http, policy=RetryPolicy(max_attempts=2, backoff_base_s=0.001)) as client:
        with pytest.raises(RetriesExhausted, match="could not connect.*TRUEDY_BASE_URL"):
            client.list_agents()


def test_the_run_deadline_stops_retrying(make_sandbox, make_client):
    server = make_sandbox(numbers=10, error_rate=1.0)
    client = make_client(server, deadline_s=0.3, policy=RetryPolicy(max_attempts=1000, backoff_base_s=0.05, backoff_cap_s=0.1))
    with pytest.raises(RetriesExhausted, match="deadline of 0.3 s"):
        client.list_agents()


def test_bad_requests_are_not_retried(make_sandbox, make_client):
    server = make_sandbox(numbers=10)
    client = make_client(server)
    with pytest.raises(ContractError, match="400 invalid_request"):
        client.get("telephony/numbers", {"page_size": 1000})
    assert client.stats.requests == 1


def test_page_drift_loses_no_live_number_and_doubles_none(make_sandbox, make_client):
    server = make_sandbox(numbers=600, seed=11, churn_per_listing=0.6)
    account = server.account
    before = live_ids(account)
    client = make_client(server, page_size=10, max_concurrency=3)
    listing = client.list_numbers()
    after = live_ids(account)
    ids = [r.id for r in listing.records]
    assert len(ids) == len(set(ids)), "no number twice"
    assert (before & after) <= set(ids), "every number live throughout the listing is in it"
    assert set(ids) <= {n.id for n in account.numbers}
    assert listing.drift and listing.passes >= 2


def test_malformed_records_become_data_issues_not_crashes(make_sandbox, make_client):
    server = make_sandbox(numbers=300)
    account = server.account
    account.set_malformed(4)
    client = make_client(server)
    listing = client.list_numbers()
    bad = account.malformed_number_ids
    assert {issue.record_id for issue in listing.issues} == bad
    assert all(issue.record_type == "number" and issue.field and issue.reason for issue in listing.issues)
    assert {r.id for r in listing.records} == live_ids(account) - bad
    issues = [i for page in client.iter_calls(account.now - dt.timedelta(days=120), account.now) for i in page.issues]
    assert len(issues) == 4 and {i.field for i in issues} == {"cost.amount"}


def test_each_retry_is_logged_once_with_its_attempt_count_reason_and_wait(caplog):
    """Against a closed port nothing goes silent: one WARNING per retry, then the failure."""
    import logging

    from reconcile.errors import RetriesExhausted

    waits: list[float] = []
    client = TruedyClient(make_http_client("http://127.0.0.1:9", "k"), policy=RetryPolicy(max_attempts=3),
                          sleep=waits.append)
    with caplog.at_level(logging.WARNING, logger="reconcile.truedy"), pytest.raises(RetriesExhausted):
        client.get("agents")
    lines = [r.getMessage() for r in caplog.records if r.name == "reconcile.truedy"]
    assert len(lines) == 2 == len(waits)
    for attempt, (line, wait) in enumerate(zip(lines, waits, strict=True), start=1):
        assert line == f"GET /agents could not connect (attempt {attempt} of 3); retrying in {wait:.1f} s"
