"""Single measured runs, each in its own process: `python -m bench.scenarios NAME PARAMS_JSON`.

Each prints one JSON object: wall time, peak RSS of this process, and its counts.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

from reconcile.config import SANDBOX_API_KEY
from reconcile.truedy import RetryPolicy, TruedyClient, make_http_client

SCENARIOS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def scenario(function: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    SCENARIOS[function.__name__] = function
    return function


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def client_for(params: dict[str, Any]) -> TruedyClient:
    http = make_http_client(params["url"], SANDBOX_API_KEY, max_concurrency=params.get("concurrency", 8))
    return TruedyClient(http, policy=RetryPolicy(), max_concurrency=params.get("concurrency", 8))


@scenario
def list_numbers(params: dict[str, Any]) -> dict[str, Any]:
    """The client's complete listing of active and pending numbers."""
    with client_for(params) as client:
        started = time.perf_counter()
        listing = client.list_numbers()
        wall = time.perf_counter() - started
        return {"wall_s": round(wall, 2), "records": len(listing.records), "requests": client.stats.requests,
                "http_429": client.stats.by_status[429], "passes": listing.passes, "peak_rss_mb": peak_rss_mb()}



def database_size_mb(url: str) -> float:
    from pathlib import Path

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from reconcile.store.database import open_engine

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        files = [Path(parsed.database + suffix) for suffix in ("", "-wal", "-shm")]
        return round(sum(f.stat().st_size for f in files if f.exists()) / 2**20, 1)
    engine = open_engine(url)
    with engine.connect() as connection:
        size = connection.execute(text(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')")).scalar()
    engine.dispose()
    return round(int(size or 0) / 2**20, 1)


@scenario
def sync(params: dict[str, Any]) -> dict[str, Any]:
    """One sync run into `database_url` as of the sandbox's clock."""
    from reconcile.clock import parse_timestamp
    from reconcile.store.database import open_engine
    from reconcile.sync import SyncOptions, run_sync

    engine = open_engine(params["database_url"])
    as_of = parse_timestamp(params["as_of"])
    with client_for(params) as client:
        started = time.perf_counter()
        summary = run_sync(client, engine, clock=lambda: as_of, options=SyncOptions(call_slices=params.get("slices", 4)))
        wall = time.perf_counter() - started
    engine.dispose()
    return {"wall_s": round(wall, 2), "requests": summary.requests, "numbers": summary.numbers_seen,
            "versions_opened": summary.versions_opened, "versions_closed": summary.versions_closed,
            "calls_added": summary.calls_added, "peak_rss_mb": peak_rss_mb(),
            "db_mb": database_size_mb(params["database_url"])}


@scenario
def report_nightly(params: dict[str, Any]) -> dict[str, Any]:
    """The nightly report for the newest run in `database_url`."""
    from pathlib import Path

    from jobs.nightly import report_nightly as render
    from reconcile.config import load_settings
    from reconcile.store.database import open_engine

    engine = open_engine(params["database_url"])
    started = time.perf_counter()
    summary, _, files = render(load_settings(environ={}), engine, out_dir=Path(params["out"]))
    wall = time.perf_counter() - started
    engine.dispose()
    sizes = {p.name: round(p.stat().st_size / 2**20, 2) for p in (files.html, files.flagged_csv, files.inventory_csv)}
    return {"wall_s": round(wall, 2), "numbers": summary.owned, "flagged": summary.flagged,
            "peak_rss_mb": peak_rss_mb(), "output_mb": sizes}


if __name__ == "__main__":
    name, raw = sys.argv[1], sys.argv[2]
    print(json.dumps(SCENARIOS[name](json.loads(raw))))
