"""Single measured runs, each in its own process: `python -m bench.scenarios NAME PARAMS_JSON`.

Each prints one JSON object: wall time, peak RSS of this process, and its counts.
The floors (`fetch_floor`, `insert_floor`) do the least the job could do: read every
page it needs and throw the records away; insert the rows a sync wrote, in bulk,
with the engine's fastest path and nothing else.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from reconcile.config import SANDBOX_API_KEY
from reconcile.truedy import RetryPolicy, TruedyClient, make_http_client

SCENARIOS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
T = TypeVar("T")


def scenario(function: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    SCENARIOS[function.__name__] = function
    return function


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def copy_memory() -> Callable[[], dict[str, float]]:
    """Watch the report's forked copies (`reconcile.alongside`); the figures once it is done.

    A copy's RSS counts the pages it shares with this process; its private pages (written
    since the fork: new objects, and inherited ones whose reference counts it changed) are
    what it adds. Each copy reads its own at the end of its work (smaps_rollup, Linux).
    """
    import os
    import tempfile

    from reconcile import alongside

    notes = tempfile.NamedTemporaryFile(prefix="copies-", suffix=".txt", delete=False)
    notes.close()
    run_copy = alongside._run_copy

    def measured(work: Callable[[], Any], pipe: int, parent: int) -> None:
        def work_then_measure() -> Any:
            value = work()
            with open("/proc/self/smaps_rollup", encoding="ascii") as rollup:
                kb = {line.split(":")[0]: int(line.split()[1]) for line in rollup if line.endswith("kB\n")}
            with open(notes.name, "a", encoding="ascii") as out:
                out.write(f"{(kb['Private_Clean'] + kb['Private_Dirty']) / 1024:.1f}\n")
            return value
        run_copy(work_then_measure, pipe, parent)

    alongside._run_copy = measured  # type: ignore[assignment]

    def figures() -> dict[str, float]:
        with open(notes.name, encoding="ascii") as written:
            private = [float(line) for line in written if line.strip()]
        os.unlink(notes.name)
        return {"copy_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
                "copy_private_mb": max(private, default=0.0)}
    return figures


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


def _job_on_store(params: dict[str, Any], job: Callable[[TruedyClient, Any, Any], T]) -> tuple[T, float, Any]:
    """Run `job(client, engine, as_of)` against the sandbox and `database_url`: its result, wall time, request stats."""
    from reconcile.clock import parse_timestamp
    from reconcile.store.database import open_engine

    engine = open_engine(params["database_url"])
    as_of = parse_timestamp(params["as_of"])
    with client_for(params) as client:
        started = time.perf_counter()
        result = job(client, engine, as_of)
        wall = time.perf_counter() - started
    engine.dispose()
    return result, wall, client.stats


@scenario
def sync(params: dict[str, Any]) -> dict[str, Any]:
    """One sync run into `database_url` as of the sandbox's clock."""
    from reconcile.sync import SyncOptions, run_sync

    options = SyncOptions(call_slices=params.get("slices", 4))
    summary, wall, stats = _job_on_store(
        params, lambda client, engine, as_of: run_sync(client, engine, clock=lambda: as_of, options=options))
    return {"wall_s": round(wall, 2), "requests": summary.requests, "numbers": summary.numbers_seen,
            "versions_opened": summary.versions_opened, "versions_closed": summary.versions_closed,
            "calls_added": summary.calls_added, "run_id": summary.run_id, "http_429": stats.by_status[429],
            "retries": stats.retries, "peak_rss_mb": peak_rss_mb(), "db_mb": database_size_mb(params["database_url"])}


@scenario
def fetch_floor(params: dict[str, Any]) -> dict[str, Any]:
    """Every page a sync reads (agents, both number listings, the calls window in slices), decoded and dropped."""
    import threading

    from reconcile.clock import format_timestamp, parse_timestamp
    from reconcile.truedy.paging import CursorPaginator, PageNumberPaginator

    after, before = parse_timestamp(params["after"]), parse_timestamp(params["before"])
    slices = params.get("slices", 4)
    records = 0
    with client_for(params) as client:
        started = time.perf_counter()
        for path, query in (("agents", None), ("telephony/numbers", None), ("telephony/numbers", {"status": "released"})):
            for page in client.paginate(path, PageNumberPaginator(client.page_size, query)):
                records += len(page)
        span = (before - after) / slices
        counts = [0] * slices

        def read(i: int) -> None:
            window = {"started_after": format_timestamp(after + span * i),
                      "started_before": format_timestamp(after + span * (i + 1) if i < slices - 1 else before)}
            for page in client.paginate("calls", CursorPaginator(client.calls_page_size, window)):
                counts[i] += len(page)

        threads = [threading.Thread(target=read, args=(i,)) for i in range(slices)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        return {"wall_s": round(wall, 2), "records": records + sum(counts), "calls": sum(counts),
                "requests": client.stats.requests, "peak_rss_mb": peak_rss_mb()}


INSERTED = {  # table -> the column that says which run wrote the row
    "agent_versions": "valid_from_run", "number_versions": "valid_from_run", "calls": "sync_run_id"}


@scenario
def insert_floor(params: dict[str, Any]) -> dict[str, Any]:
    """The rows sync run `run_id` wrote in `source_url`, inserted in bulk into `target_url` (same engine kind)."""
    from sqlalchemy.engine import make_url

    from reconcile.store.database import open_engine

    source, target = open_engine(params["source_url"]), open_engine(params["target_url"])
    run_id = params["run_id"]
    rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    with source.connect() as connection:
        raw = connection.connection.dbapi_connection
        cursor = raw.cursor()
        for table, column in INSERTED.items():
            cursor.execute(f"SELECT * FROM {table} WHERE {column} = {int(run_id)}")  # noqa: S608 - names from INSERTED
            rows[table] = ([d[0] for d in cursor.description], [tuple(r) for r in cursor.fetchall()])
        cursor.execute("SELECT * FROM sync_runs")
        runs = ([d[0] for d in cursor.description], [tuple(r) for r in cursor.fetchall()])
    postgres = make_url(params["target_url"]).get_backend_name() == "postgresql"
    with target.begin() as connection:  # the run rows the foreign keys need: not timed
        cursor = connection.connection.dbapi_connection.cursor()
        cursor.execute("SELECT id FROM sync_runs")
        have = {r[0] for r in cursor.fetchall()}
        missing = [r for r in runs[1] if r[0] not in have]
        (_copy if postgres else _executemany)(cursor, "sync_runs", runs[0], missing)
    count = sum(len(body) for _, body in rows.values())
    started = time.perf_counter()
    with target.begin() as connection:
        cursor = connection.connection.dbapi_connection.cursor()
        for table, (columns, body) in rows.items():
            if postgres:
                _copy(cursor, table, columns, body)
            else:
                _executemany(cursor, table, columns, body)
    wall = time.perf_counter() - started
    source.dispose()
    target.dispose()
    return {"wall_s": round(wall, 2), "rows": count, "method": "COPY" if postgres else "executemany",
            "peak_rss_mb": peak_rss_mb()}


def _executemany(cursor: Any, table: str, columns: list[str], body: list[tuple[Any, ...]]) -> None:
    marks = ', '.join(['?'] * len(columns))
    cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", body)  # noqa: S608 - our tables


def _copy(cursor: Any, table: str, columns: list[str], body: list[tuple[Any, ...]]) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in body:
            copy.write_row(row)


@scenario
def sync_invoices(params: dict[str, Any]) -> dict[str, Any]:
    """The monthly job's invoice sync for the month before the sandbox's clock."""
    from reconcile.invoice_sync import run_invoice_sync
    from reconcile.review.monthly import previous_period

    summary, wall, stats = _job_on_store(params, lambda client, engine, as_of: run_invoice_sync(
        client, engine, (previous_period(as_of),), clock=lambda: as_of))
    return {"wall_s": round(wall, 2), "requests": stats.requests, "invoices": summary.invoices_listed,
            "lines": summary.lines_read, "peak_rss_mb": peak_rss_mb()}


@scenario
def report_monthly(params: dict[str, Any]) -> dict[str, Any]:
    """The monthly review of the month before `as_of`, from the store (invoices already synced)."""
    from pathlib import Path

    from reconcile.clock import parse_timestamp
    from reconcile.config import load_settings
    from reconcile.jobs.monthly import report_monthly as render
    from reconcile.review.monthly import previous_period
    from reconcile.store.database import open_engine

    engine = open_engine(params["database_url"])
    as_of = parse_timestamp(params["as_of"])
    copies = copy_memory()
    started = time.perf_counter()
    outcome = render(load_settings(environ={}), engine, previous_period(as_of), lambda: as_of, Path(params["out"]),
                     fetch=False)
    wall = time.perf_counter() - started
    engine.dispose()
    files = outcome.files
    sizes = {p.name: round(p.stat().st_size / 2**20, 2) for p in (files.html, files.reconciliation_csv, files.focus_csv)}
    return {"wall_s": round(wall, 2), "findings": len(outcome.review.reconciliation.findings),
            "focus_rows": sum(1 for _ in files.focus_csv.open(encoding="utf-8")) - 1, "peak_rss_mb": peak_rss_mb(),
            **copies(), "output_mb": sizes}


@scenario
def report_nightly(params: dict[str, Any]) -> dict[str, Any]:
    """The nightly report for the newest run in `database_url`."""
    from pathlib import Path

    from reconcile.config import load_settings
    from reconcile.jobs.nightly import report_nightly as render
    from reconcile.store.database import open_engine

    engine = open_engine(params["database_url"])
    copies = copy_memory()
    started = time.perf_counter()
    outcome = render(load_settings(environ={}), engine, out_dir=Path(params["out"]))
    summary, files = outcome.summary, outcome.files
    wall = time.perf_counter() - started
    engine.dispose()
    sizes = {p.name: round(p.stat().st_size / 2**20, 2) for p in (files.html, files.flagged_csv, files.inventory_csv)}
    return {"wall_s": round(wall, 2), "numbers": summary.owned, "flagged": summary.flagged,
            "peak_rss_mb": peak_rss_mb(), **copies(), "output_mb": sizes}


@scenario
def baseline(params: dict[str, Any]) -> dict[str, Any]:
    """One night of the naive script (bench/baseline.py) into `database_url`."""
    from pathlib import Path

    from bench.baseline import night
    from reconcile.clock import parse_timestamp

    started = time.perf_counter()
    counts = night(params["url"], params["database_url"], Path(params["out"]), parse_timestamp(params["as_of"]),
                   SANDBOX_API_KEY)
    wall = time.perf_counter() - started
    return {"wall_s": round(wall, 2), **counts, "peak_rss_mb": peak_rss_mb(),
            "db_mb": database_size_mb(params["database_url"])}


if __name__ == "__main__":
    name, raw = sys.argv[1], sys.argv[2]
    print(json.dumps(SCENARIOS[name](json.loads(raw))))
