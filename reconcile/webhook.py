"""Alerts where ops teams look: a Slack-compatible webhook (`{"text": ...}`), retried, redacted.

The URL is a secret (Slack's carry their token in the path): it is registered for
redaction and never logged. A POST is retried only when the server certainly did not act
on it (429, or no connection), as every POST here; the text is redacted before it leaves.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable

import httpx

from reconcile.errors import DeliveryError
from reconcile.redaction import clip, redact, register_secrets
from reconcile.retry import RetryPolicy

log = logging.getLogger("reconcile.webhook")
MAX_TEXT = 3000  # Slack shows about this much of a message's text


class Webhook:
    def __init__(self, url: str, *, timeout_s: float = 10.0, policy: RetryPolicy | None = None,
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        register_secrets([url])
        self.url = url
        self.policy = policy or RetryPolicy(max_attempts=4, backoff_base_s=1.0, backoff_cap_s=30.0)
        self.client = httpx.Client(timeout=timeout_s, transport=transport)
        self.sleep = sleep
        self.rng = rng or random.Random()

    def post(self, text: str) -> None:
        """Post `text`; DeliveryError (naming no URL) when the hook did not take it."""
        payload = {"text": clip(redact(text), MAX_TEXT)}
        for attempt in range(1, self.policy.max_attempts + 1):
            try:
                response = self.client.post(self.url, json=payload)
            except httpx.TransportError as exc:
                why, headers = type(exc).__name__, None
                if not self.policy.should_retry("POST", None, exc) or attempt == self.policy.max_attempts:
                    raise DeliveryError(f"the webhook did not answer ({why}) after {attempt} attempt(s)") from None
            else:
                if response.status_code < 300:
                    return
                why, headers = f"answered {response.status_code}", response.headers
                if not self.policy.should_retry("POST", response.status_code, None) \
                        or attempt == self.policy.max_attempts:
                    raise DeliveryError(f"the webhook {why} after {attempt} attempt(s)")
            delay = self.policy.delay_s(attempt, headers, dt.datetime.now(dt.UTC), self.rng)
            log.warning("webhook %s (attempt %d of %d); retrying in %.1f s", why, attempt,
                        self.policy.max_attempts, delay)
            self.sleep(delay)
        raise DeliveryError("the webhook did not take the message")

    def close(self) -> None:
        self.client.close()
