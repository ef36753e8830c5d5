"""Composition for the edges: settings into a store, a client, a lock and a clock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from sqlalchemy import Engine

from reconcile.config import SANDBOX_API_KEY, Settings
from reconcile.errors import ConfigError
from reconcile.store.database import check_schema, open_engine
from reconcile.store.lock import RunLock
from reconcile.sync import SyncOptions
from reconcile.truedy import RetryPolicy, TruedyClient, make_http_client
from reconcile.webhook import Webhook


def open_store(settings: Settings, check: bool = True) -> Engine:
    engine = open_engine(settings.database_url)
    if check:
        check_schema(engine)
    return engine


def make_client(settings: Settings, transport: httpx.BaseTransport | None = None) -> TruedyClient:
    t = settings.truedy
    if not t.api_key:
        raise ConfigError(f"TRUEDY_API_KEY is not set; export it (the sandbox's key is {SANDBOX_API_KEY})")
    http = make_http_client(t.base_url, t.api_key.reveal(), timeout_s=t.timeout_s,
                            max_concurrency=t.max_concurrency, transport=transport)
    policy = RetryPolicy(max_attempts=t.max_attempts, backoff_base_s=t.backoff_base_s,
                         backoff_cap_s=t.backoff_cap_s, retry_after_cap_s=t.retry_after_cap_s)
    return TruedyClient(http, policy=policy, max_concurrency=t.max_concurrency, page_size=t.page_size,
                        calls_page_size=t.calls_page_size, deadline_s=t.run_deadline_s)


def webhook_for(settings: Settings) -> Webhook | None:
    """The alert webhook, when notify.webhook_url (or RECONCILE_WEBHOOK_URL) is set."""
    url = settings.notify.webhook_url.reveal()
    return Webhook(url, timeout_s=settings.truedy.timeout_s) if url else None


def sync_options(settings: Settings) -> SyncOptions:
    return SyncOptions(calls_backfill_days=settings.sync.calls_backfill_days,
                       calls_overlap_minutes=settings.sync.calls_overlap_minutes,
                       call_slices=settings.truedy.max_concurrency)


@contextmanager
def exclusive_run(engine: Engine) -> Iterator[None]:
    """Hold the one-run-at-a-time lock for this database (LockedError, exit 5, if taken)."""
    with RunLock(engine):
        yield
