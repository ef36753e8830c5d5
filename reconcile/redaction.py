"""Secrets never leave the process: one redaction for every text that is stored, logged, mailed or printed.

The order matters: redact first, then cut. A message cut first can leave most of a
secret behind (the cut falls inside it, so the whole secret no longer matches).
`clip` does both in that order; every place that shortens a text uses it.

Upstream text (ids, names, error messages) may hold line breaks or terminal escapes;
`printable` shows them as escapes so that one log line stays one line.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

MASK = "***"
_SECRETS: tuple[str, ...] = ()  # longest first, so a secret that contains another is masked whole
_LOCK = threading.Lock()

# query parameters of a URL whose values are secrets (database URLs, webhook URLs)
_SECRET_PARAMS = r"(?:password|passwd|pwd|pass|secret|token|api_key|apikey|key|sslpassword|access_token)"
_QUERY_SECRET = re.compile(rf"([?&;]{_SECRET_PARAMS}=)[^&;#\s]*", re.IGNORECASE)
_USERINFO_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]*@")
_BEARER = re.compile(r"(Bearer\s+)[^\s\"',;]+", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def register_secrets(values: Iterable[str]) -> None:
    """Values that must never be shown; every redacted text is scrubbed of them."""
    global _SECRETS
    with _LOCK:
        known = set(_SECRETS) | {value for value in values if value and len(value) >= 4}
        _SECRETS = tuple(sorted(known, key=len, reverse=True))


def redact(text: str) -> str:
    """`text` without any registered secret, URL password, secret query value or bearer token.

    URLs (database, webhook) go through here too: their password and secret query values are masked.
    """
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _USERINFO_PASSWORD.sub(rf"\1{MASK}@", text)
    text = _QUERY_SECRET.sub(rf"\1{MASK}", text)
    return _BEARER.sub(rf"\1{MASK}", text)


def clip(text: str, limit: int) -> str:
    """Redact, then cut to `limit` characters (never the other way round)."""
    return _cut(redact(text), limit)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def printable(text: str) -> str:
    """Control characters (line breaks, escapes) shown as escapes: one line stays one line."""
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def safe_line(text: str, limit: int | None = None) -> str:
    """What may be printed or stored about an error: redacted, one line, then cut."""
    text = printable(redact(text))
    return text if limit is None else _cut(text, limit)
