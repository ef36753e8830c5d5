"""Every sandbox answer conforms to truedy-api.yaml, on every path of the contract."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

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
