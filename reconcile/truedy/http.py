"""The HTTP side of the Truedy client: an authenticated httpx client, and the upstream's errors in words."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from reconcile import __version__
from reconcile.errors import ConfigError, ContractError
from reconcile.redaction import clip, register_secrets
from reconcile.truedy.deadline import deadline_transport


def make_http_client(
    base_url: str, api_key: str, *, timeout_s: float = 30.0, max_concurrency: int = 8,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An httpx client that authenticates to Truedy; httpx masks the header in its repr.

    Without an injected transport, the client's sockets honour the whole-answer deadline
    that `TruedyClient.request` sets (a dripping server cannot hold a request for ever).
    """
    check_header_value("TRUEDY_API_KEY", api_key)
    register_secrets([api_key])
    limits = httpx.Limits(max_connections=max_concurrency + 2, max_keepalive_connections=max_concurrency + 2)
    return httpx.Client(
        base_url=base_url.rstrip("/") + "/",
        headers={"Authorization": f"Bearer {api_key}", "User-Agent": f"reconcile/{__version__}"},
        timeout=httpx.Timeout(timeout_s),
        limits=limits,
        transport=transport or deadline_transport(limits),
    )


def check_header_value(name: str, value: str) -> None:
    """A value bound for an HTTP header: printable ASCII only (a stray newline is a configuration error)."""
    bad = next((ch for ch in value if not " " < ch < "\x7f"), None)
    if bad is not None:
        what = "a control character (a stray line break?)" if ord(bad) < 32 or ord(bad) == 127 else (
            "a space" if bad == " " else "a non-ASCII character")
        raise ConfigError(f"{name} holds {what}; an HTTP header takes printable ASCII only: set it again")


def not_json(where: str, status: int = 200) -> ContractError:
    """The error for an answer whose body is not JSON (orjson refused it)."""
    return ContractError(f"{where} answered {status} with a body that is not JSON")


def error_code(response: httpx.Response) -> str:
    body = error_body(response)
    return clip(str(body.get("code", "")), 60) if body else "(no error body)"


def error_message(response: httpx.Response) -> str:
    """The upstream's own words, redacted before they are cut (an echoed key never survives in part)."""
    body = error_body(response)
    return clip(str(body.get("message", "")), 200) if body else clip(response.text, 120)


def error_body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def describe_transport_error(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    return type(exc).__name__
