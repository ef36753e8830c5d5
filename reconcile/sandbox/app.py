"""The sandbox's HTTP face: every path of truedy-api.yaml, served from an `Account`.

Auth, Error bodies, the per-key rate limit (429 + Retry-After, X-RateLimit-* on every
answer), injected latency and faults, and page drift come from here; the account
holds the data. Two extra paths outside the contract drive the clock:
`GET /_sandbox/clock`, `POST /_sandbox/advance {"days": N}`, and
`POST /_sandbox/faults {"latency_s": 0.02, "rate_limit": 20, ...}` to turn the knobs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import hmac
import json
import math
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reconcile.clock import format_timestamp, parse_timestamp
from reconcile.config import SANDBOX_API_KEY
from reconcile.sandbox.account import Account, SandboxError
from reconcile.sandbox.billing import billing_for

Handler = Callable[[Request, Account, Any], Any]


class RateLimiter:
    """A fixed one-second window for one key; runs on the event loop's thread only."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self.window = 0
        self.count = 0
        self.rejected = 0

    def admit(self, limit: int) -> tuple[bool, dict[str, str]]:
        now = self.monotonic()
        window = int(now)
        if window != self.window:
            self.window, self.count = window, 0
        reset = max(1, math.ceil(window + 1 - now))
        if limit <= 0:
            return True, {"X-RateLimit-Limit": "1000000", "X-RateLimit-Remaining": "1000000", "X-RateLimit-Reset": "1"}
        admitted = self.count < limit
        if admitted:
            self.count += 1
        else:
            self.rejected += 1
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - self.count)),
            "X-RateLimit-Reset": str(reset),
        }
        if not admitted:
            headers["Retry-After"] = str(reset)
        return admitted, headers


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    try:
        content = orjson.dumps(body)
    except TypeError:  # a page number past 64 bits, echoed in `meta`: JSON has no such limit, orjson does
        content = json.dumps(body, ensure_ascii=False).encode()
    return Response(content, status_code=status, headers=headers, media_type="application/json")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"error": {"code": code, "message": message}}, status, headers)


PAGED = ("page", "page_size")


def _date(account: Account) -> dict[str, str]:
    """The `Date` header from the account's clock (which the demo and tests move), not the host's."""
    return {"Date": email.utils.format_datetime(account.now.astimezone(dt.UTC), usegmt=True)}


def create_app(account: Account, api_key: str = SANDBOX_API_KEY) -> Starlette:
    limiter = RateLimiter()            # the key's budget: only requests that carry the key spend it
    anonymous = RateLimiter()          # every request without the right key, together
    faults_rng = random.Random(account.seed + 99)
    expected = f"Bearer {api_key}".encode()
    requests: list[tuple[str, str]] = []  # (method, path) of every request the key made: what a test inspects

    def endpoint(handler: Handler, needs_body: bool = False,
                 query: tuple[str, ...] = ()) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            faults = account.faults
            if faults.latency_s:
                await asyncio.sleep(faults.latency_s)
            given = request.headers.get("authorization", "").encode()
            authorized = hmac.compare_digest(given, expected)
            admitted, headers = (limiter if authorized else anonymous).admit(faults.rate_limit)
            headers.update(_date(account))
            if not admitted:
                return _error(429, "rate_limited", "too many requests", headers)
            if not authorized:
                return _error(401, "unauthorized", "missing or invalid API key", headers)
            requests.append((request.method, request.url.path))
            if faults.slow_rate and faults_rng.random() < faults.slow_rate:
                await asyncio.sleep(faults.slow_s)
            if faults.error_rate and faults_rng.random() < faults.error_rate:
                status = faults_rng.choice((500, 502, 503, 504))
                if status == 502:
                    return Response("<html><body>502 Bad Gateway</body></html>", 502, headers, "text/html")
                return _error(status, "internal", "transient upstream fault", headers)
            unknown = sorted(set(request.query_params) - set(query))
            if unknown:  # strict on purpose: a client's misspelt parameter would otherwise be ignored silently
                return _error(400, "invalid_request", f"unknown query parameter {unknown[0][:40]!r}", headers)
            payload = None
            if needs_body:
                try:
                    payload = orjson.loads(await request.body())
                except orjson.JSONDecodeError:
                    return _error(400, "invalid_request", "the body is not JSON", headers)
                if not isinstance(payload, dict):
                    return _error(400, "invalid_request", "the body must be a JSON object", headers)
            try:
                with account.lock:
                    status, body = handler(request, account, payload)
            except SandboxError as exc:
                return _error(exc.status, exc.code, exc.message, headers)
            if request.method in ("POST", "DELETE") and faults.lose_write_answers > 0:
                faults.lose_write_answers -= 1  # it acted; the answer is lost on the way
                return _error(503, "internal", "transient upstream fault", headers)
            return _json(body, status, headers)

        return serve

    routes = [
        Route("/telephony/numbers", endpoint(list_numbers, query=PAGED + ("status",)), methods=["GET"]),
        Route("/telephony/numbers/search", endpoint(search_numbers, True), methods=["POST"]),
        Route("/telephony/numbers/purchase", endpoint(purchase_number, True), methods=["POST"]),
        Route("/telephony/numbers/assign", endpoint(assign_number, True), methods=["POST"]),
        Route("/telephony/numbers/unassign", endpoint(unassign_number, True), methods=["POST"]),
        Route("/telephony/numbers/{number_id}", endpoint(number_by_id), methods=["GET", "DELETE"]),
        Route("/agents", endpoint(list_agents, query=PAGED), methods=["GET"]),
        Route("/calls", endpoint(list_calls, query=("started_after", "started_before", "cursor", "limit")),
              methods=["GET"]),
        Route("/billing/invoices", endpoint(list_invoices, query=PAGED), methods=["GET"]),
        Route("/billing/invoices/{invoice_id}/line_items", endpoint(list_line_items, query=PAGED), methods=["GET"]),
        Route("/_sandbox/clock", endpoint(clock), methods=["GET"]),
        Route("/_sandbox/advance", endpoint(advance, True), methods=["POST"]),
        Route("/_sandbox/faults", endpoint(set_faults, True), methods=["POST"]),
    ]
    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, "not_found", "no such path in this API", _date(account))

    async def not_allowed(request: Request, exc: Exception) -> Response:
        headers = {**_date(account), **(getattr(exc, "headers", None) or {})}
        return _error(405, "method_not_allowed", f"{request.method} is not allowed here", headers)

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})
    app.state.account = account
    app.state.requests = requests
    app.state.limiter = limiter
    app.state.anonymous = anonymous
    return app


def _int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return _in_range(int(raw), name, low, high)
    except ValueError:
        raise SandboxError(400, "invalid_request", f"{name} must be a whole number") from None


def _in_range(value: Any, name: str, low: int, high: int | None) -> int:
    """A whole number from `low` to `high` (no upper bound when None); 400 otherwise."""
    if isinstance(value, float) and value.is_integer():  # JSON Schema: 2.0 is an integer
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of {low} or more"
        raise SandboxError(400, "invalid_request", f"{name} must be a whole number {bounds}")
    return value


def _page(request: Request, items: list[Any], render: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    page = _int_param(request, "page", 1, 1, None)  # past the last page: empty data (the contract)
    size = _int_param(request, "page_size", 20, 1, 100)
    total = len(items)
    chosen = items[(page - 1) * size: page * size]
    return {
        "data": [render(item) for item in chosen],
        "meta": {"page": page, "page_size": size, "total_pages": math.ceil(total / size), "total_results": total},
    }


def list_numbers(request: Request, account: Account, _: Any) -> tuple[int, Any]:
    status = request.query_params.get("status")
    if status not in (None, "active", "pending", "released"):
        raise SandboxError(400, "invalid_request", "status must be active, pending or released")
    churn = account.faults.churn_per_listing
    if churn and status is None and random.random() < churn:
        _churn_once(account)
    return 200, _page(request, account.listing(status), account.number_json)


def _churn_once(account: Account) -> None:
    """Someone buys and releases a number while a client pages (the contract's drift)."""
    live = account.listing(None)
    if live:
        account.release(random.choice(live).id)
    offer = account.search("US", "local", None, 1)[0]
    account.purchase(offer["phone_number"])


def number_by_id(request: Request, account: Account, _: Any) -> tuple[int, Any]:
    """GET reads one number, DELETE releases it (one route, so that 405's Allow names both)."""
    number_id = request.path_params["number_id"]
    if request.method == "DELETE":
        return 200, account.number_json(account.release(number_id))
    return 200, account.number_json(account.get_number(number_id))


def _field(payload: dict[str, Any], name: str, min_length: int = 1) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or len(value) < min_length:
        raise SandboxError(400, "invalid_request", f"{name} is required")
    return value


def _optional_text(payload: dict[str, Any], name: str, default: str | None = None) -> str | None:
    value = payload.get(name, default)
    if name in payload and not isinstance(value, str):
        raise SandboxError(400, "invalid_request", f"{name} must be a string")
    return value


def search_numbers(request: Request, account: Account, payload: dict[str, Any]) -> tuple[int, Any]:
    size = _in_range(payload.get("page_size", 20), "page_size", 1, 50)
    page = _in_range(payload.get("page", 1), "page", 1, None)
    country = _optional_text(payload, "country_code", "US") or ""
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise SandboxError(400, "invalid_request", "country_code must be an ISO 3166-1 alpha-2 code, e.g. US")
    kind = _optional_text(payload, "phone_number_type", "local") or ""
    for name in ("administrative_area", "locality"):
        _optional_text(payload, name)
    found = account.search(country, kind, _optional_text(payload, "area_code"), size) if page == 1 else []
    return 200, {"data": found, "meta": {"page": page, "page_size": size, "total_pages": 1 if found else 0,
                                         "total_results": len(found)}}


def purchase_number(request: Request, account: Account, payload: dict[str, Any]) -> tuple[int, Any]:
    return 201, account.number_json(account.purchase(_field(payload, "phone_number")))


def assign_number(request: Request, account: Account, payload: dict[str, Any]) -> tuple[int, Any]:
    number = account.assign(_field(payload, "number_id"), _field(payload, "agent_id", min_length=0),
                            _field(payload, "assignment_type"))
    return 200, account.number_json(number)


def unassign_number(request: Request, account: Account, payload: dict[str, Any]) -> tuple[int, Any]:
    number = account.unassign(_field(payload, "number_id"), _field(payload, "assignment_type"))
    return 200, account.number_json(number)


def list_agents(request: Request, account: Account, _: Any) -> tuple[int, Any]:
    return 200, _page(request, account.agents, lambda agent: agent.to_json())


def list_calls(request: Request, account: Account, _: Any) -> tuple[int, Any]:
    bounds = {}
    for name in ("started_after", "started_before"):
        raw = request.query_params.get(name)
        try:
            bounds[name] = parse_timestamp(raw) if raw is not None else None
        except ValueError:
            raise SandboxError(400, "invalid_request", f"{name} must be an RFC 3339 timestamp") from None
    limit = _int_param(request, "limit", 100, 1, 500)
    data, cursor = account.calls_page(
        bounds["started_after"], bounds["started_before"], request.query_params.get("cursor"), limit)
    return 200, {"data": data, "next_cursor": cursor}


def list_invoices(request: Request, account: Account, _: Any) -> tuple[int, Any]:
    return 200, _page(request, billing_for(account).invoices, dict)


def list_line_items(request: Request, account: Account, _: Any) -> tuple[int, Any]:
    invoice_id = request.path_params["invoice_id"]
    lines = billing_for(account).lines.get(invoice_id)
    if lines is None:
        raise SandboxError(404, "not_found", f"no invoice {invoice_id[:60]}")
    return 200, _page(request, lines, dict)


def clock(request: Request, account: Account, _: Any) -> tuple[int, Any]:
    return 200, {"now": format_timestamp(account.now), "days_advanced": account.days_advanced}


def advance(request: Request, account: Account, payload: dict[str, Any]) -> tuple[int, Any]:
    days = payload.get("days", 1)
    if not isinstance(days, int) or not 0 <= days <= 366:
        raise SandboxError(400, "invalid_request", "days must be a whole number from 0 to 366")
    account.advance(days=days)
    return clock(request, account, None)


def set_faults(request: Request, account: Account, payload: dict[str, Any]) -> tuple[int, Any]:
    from dataclasses import asdict, fields

    known = {f.name: f.type for f in fields(account.faults)}
    for name, value in payload.items():
        if name not in known or name == "malformed" or not isinstance(value, int | float) or value < 0:
            raise SandboxError(400, "invalid_request", f"unknown or invalid fault knob {name[:40]!r}")
        setattr(account.faults, name, type(getattr(account.faults, name))(value))
    return 200, asdict(account.faults)
