"""Shared fixtures: the sandbox over real HTTP on loopback, clients pointed at it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reconcile.config import SANDBOX_API_KEY
from reconcile.sandbox import Account, SandboxServer, generate_account
from reconcile.truedy import RetryPolicy, TruedyClient, make_http_client

START = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
FAST_RETRIES = RetryPolicy(max_attempts=6, backoff_base_s=0.01, backoff_cap_s=0.05, retry_after_cap_s=2.0)


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., SandboxServer]]:
    """Start a sandbox server on an ephemeral loopback port; all are stopped at the end."""
    servers: list[SandboxServer] = []

    def start(numbers: int = 200, seed: int = 7, account: Account | None = None, api_key: str = SANDBOX_API_KEY,
              **faults: Any) -> SandboxServer:
        account = account or generate_account(seed=seed, numbers=numbers, start=START)
        account.faults.rate_limit = 0
        for name, value in faults.items():
            setattr(account.faults, name, value)
        server = SandboxServer(account, api_key=api_key).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def make_client() -> Iterator[Callable[..., TruedyClient]]:
    clients: list[TruedyClient] = []

    def build(server: SandboxServer, api_key: str = SANDBOX_API_KEY, timeout_s: float = 10.0,
              policy: RetryPolicy = FAST_RETRIES, **options: Any) -> TruedyClient:
        options.setdefault("max_concurrency", 4)
        http = make_http_client(server.url, api_key, timeout_s=timeout_s, max_concurrency=options["max_concurrency"])
        client = TruedyClient(http, policy=policy, **options)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file, or a new schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    import os
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = os.environ.get("RECONCILE_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("RECONCILE_TEST_POSTGRES_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def store(database_url):
    """An engine on a store upgraded to the newest schema."""
    from reconcile.store.database import open_engine, upgrade

    engine = open_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()
