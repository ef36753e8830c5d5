"""Every sandbox answer conforms to truedy-api.yaml, on every path of the contract."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi import checks as openapi_checks

from reconcile.clock import format_timestamp
from reconcile.config import SANDBOX_API_KEY
from tests.contract import assert_conforms, spec


@pytest.fixture
def http(make_sandbox):
    server = make_sandbox(numbers=300, seed=5)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {SANDBOX_API_KEY}"}) as client:
        client.sandbox = server
        yield client


def call(http, method, path, **kwargs):
    response = http.request(method, path, **kwargs)
    assert_conforms(response)
    return response


def test_read_paths_conform(http):
    account = http.sandbox.account
    for status in (None, "active", "pending", "released"):
        params = {"page_size": 100} | ({"status": status} if status else {})
        body = call(http, "GET", "/telephony/numbers", params=params).json()
        assert body["meta"]["total_results"] >= len(body["data"])
    released = next(n for n in account.numbers if n.status == "released")
    assert call(http, "GET", f"/telephony/numbers/{released.id}").json()["status"] == "released"
    assert call(http, "GET", "/telephony/numbers/num_NOPE").status_code == 404
    call(http, "GET", "/agents", params={"page": 2, "page_size": 5})
    after = format_timestamp(account.now - dt.timedelta(days=30))
    body = call(http, "GET", "/calls", params={"started_after": after, "limit": 50}).json()
    call(http, "GET", "/calls", params={"started_after": after, "limit": 50, "cursor": body["next_cursor"]})
    invoices = call(http, "GET", "/billing/invoices", params={"page_size": 100}).json()["data"]
    for invoice in invoices[:6]:
        call(http, "GET", f"/billing/invoices/{invoice['id']}/line_items", params={"page_size": 100})
    assert call(http, "GET", "/billing/invoices/inv_nope/line_items").status_code == 404


def test_write_paths_conform_and_change_the_account(http):
    account = http.sandbox.account
    found = call(http, "POST", "/telephony/numbers/search", json={"country_code": "US", "area_code": "415"}).json()
    phone = found["data"][0]["phone_number"]
    assert phone.startswith("+1415")
    number = call(http, "POST", "/telephony/numbers/purchase", json={"phone_number": phone})
    assert number.status_code == 201 and number.json()["is_truedy_managed"] is True
    assert call(http, "POST", "/telephony/numbers/purchase", json={"phone_number": phone}).status_code == 409
    number_id = number.json()["id"]
    agent = next(a for a in account.agents if a.status == "active")
    assigned = call(http, "POST", "/telephony/numbers/assign",
                    json={"number_id": number_id, "agent_id": agent.id, "assignment_type": "inbound"}).json()
    assert assigned["assignments"][0]["agent_id"] == agent.id
    left = call(http, "POST", "/telephony/numbers/unassign", json={"number_id": number_id, "assignment_type": "inbound"})
    assert left.json()["assignments"] == []
    assert call(http, "POST", "/telephony/numbers/assign", json={"number_id": number_id}).status_code == 400
    released = call(http, "DELETE", f"/telephony/numbers/{number_id}").json()
    assert released["status"] == "released" and released["released_at"]
    again = call(http, "DELETE", f"/telephony/numbers/{number_id}").json()
    assert again == released, "releasing is idempotent"
    assert call(http, "DELETE", "/telephony/numbers/num_NOPE").status_code == 404


def test_errors_conform(http):
    wrong = httpx.get(http.sandbox.url + "/agents", headers={"Authorization": "Bearer nope"})
    assert_conforms(wrong)
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    missing = httpx.get(http.sandbox.url + "/telephony/numbers")
    assert missing.status_code == 401
    assert call(http, "GET", "/telephony/numbers", params={"page_size": 101}).status_code == 400
    assert call(http, "GET", "/calls", params={"cursor": "garbage!"}).status_code == 400


def test_rate_limit_answers_conform(http):
    http.sandbox.account.faults.rate_limit = 3
    statuses = [call(http, "GET", "/agents").status_code for _ in range(8)]
    assert 429 in statuses


def test_every_path_of_the_contract_is_routed(http):
    routed = {route.path for route in http.sandbox.app.routes}
    assert set(spec()["paths"]) <= routed


def test_the_vendored_contract_matches_shared_when_present():
    from pathlib import Path

    from tests.contract import SPEC_PATH

    shared = Path(__file__).resolve().parents[2] / "shared" / "truedy-api.yaml"
    if not shared.exists():
        pytest.skip("no ../shared beside this checkout")
    assert shared.read_text() == SPEC_PATH.read_text(), "copy ../shared/truedy-api.yaml into reconcile/sandbox/"


# -- the sandbox held to its contract: rate limit per key, Error bodies everywhere ---------


def test_the_rate_limit_is_per_key_and_wrong_keys_never_spend_it(make_sandbox):
    server = make_sandbox(numbers=10, rate_limit=20)
    with httpx.Client(base_url=server.url) as client:
        statuses = set()
        for _ in range(200):  # until the unauthenticated budget runs out (bounded)
            statuses.add(client.get("/agents", headers={"Authorization": "Bearer wrong"}).status_code)
            if 429 in statuses:
                break
        assert statuses == {401, 429}, "wrong keys are throttled among themselves"
        right = client.get("/agents", headers={"Authorization": f"Bearer {SANDBOX_API_KEY}"})
        assert right.status_code == 200, right.text
        assert right.headers["X-RateLimit-Remaining"] == "19"


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/no/such/path", 404), ("PUT", "/telephony/numbers", 405), ("PATCH", "/agents", 405),
    ("OPTIONS", "/telephony/numbers/num_x", 405)])
def test_unknown_paths_and_methods_answer_an_error_body(http, method, path, status):
    response = http.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()["error"]) == {"code", "message"}
    if status == 405 and path.startswith("/telephony/numbers/"):
        assert {"GET", "DELETE"} <= {m.strip() for m in response.headers["allow"].split(",")}


@pytest.mark.parametrize(("body", "status"), [
    ({"page": 0}, 400), ({"page_size": 51}, 400), ({"country_code": "us"}, 400), ({"locality": None}, 400),
    ({"country_code": "ZZ"}, 200), ({"page": 2}, 200)])
def test_search_validates_as_the_contract_says(http, body, status):
    response = call(http, "POST", "/telephony/numbers/search", json=body)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["data"] == [], "nothing on offer (or past the last page) is an empty list"


def test_unknown_query_parameters_are_refused(http):
    response = call(http, "GET", "/agents", params={"pagesize": 5})
    assert response.status_code == 400 and "pagesize" in response.json()["error"]["message"]


def test_the_date_header_is_the_sandbox_clock(http):
    import email.utils

    response = call(http, "GET", "/agents")
    assert email.utils.parsedate_to_datetime(response.headers["date"]) == \
        http.sandbox.account.now.replace(microsecond=0)


# -- Schemathesis: generated requests against the contract, a few per operation, loopback only --

def _schemathesis_cases():
    import schemathesis

    from tests.contract import SPEC_PATH

    return schemathesis.openapi.from_path(SPEC_PATH)


SCHEMA = _schemathesis_cases()

# Each check left out here is a false positive, with the contract's sentence that allows the answer:
FALSE_POSITIVES = {
    # "phone_number: E.164, exactly as returned by search": a well-formed string that no search
    # returned is refused with the declared 400, which Schemathesis takes for a valid request refused.
    "POST /telephony/numbers/purchase": "positive_data_acceptance",
    # "Pass `next_cursor` back as `cursor` with the same filters": a cursor the API never handed
    # out is refused with the declared 400.
    "GET /calls": "positive_data_acceptance",
}


@pytest.fixture(scope="module")
def schemathesis_sandbox():
    from reconcile.sandbox import SandboxServer, generate_account
    from tests.conftest import START

    account = generate_account(seed=11, numbers=60, start=START)
    account.faults.rate_limit = 0
    with SandboxServer(account) as server:
        yield server


@SCHEMA.parametrize()
# derandomized: the same examples on every run, so CI cannot pass one day and fail the next
# (the generator was run here with random seeds 1-8 first; each failure it found was fixed)
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
def test_schemathesis_finds_no_contract_violation(case, schemathesis_sandbox):
    excluded = FALSE_POSITIVES.get(f"{case.method.upper()} {case.path}")
    case.call_and_validate(base_url=schemathesis_sandbox.url, headers={"Authorization": f"Bearer {SANDBOX_API_KEY}"},
                           excluded_checks=[getattr(openapi_checks, excluded)] if excluded else None)
