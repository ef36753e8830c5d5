"""`make bench`: the job at scale against a sandbox in its own process; one table, also JSON in var/bench/.

Scenarios so far: the client's listing (no latency and 20 ms), a first and an
incremental sync (SQLite, and PostgreSQL with --postgres-url), and the nightly report.
The floors and ratios of issue 8 are still to come.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import uuid
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.harness import ROOT, SandboxProcess, run_child
from reconcile.store.database import open_engine, upgrade

OUT = ROOT / "var" / "bench"


def fresh_store(kind: str, postgres_url: str | None) -> tuple[str, Any]:
    """A new empty store: a SQLite file under var/bench, or a new schema on PostgreSQL; and its cleanup."""
    if kind == "sqlite":
        path = OUT / f"bench-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"

        def cleanup() -> None:
            for suffix in ("", "-wal", "-shm", ".lock"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
    else:
        assert postgres_url
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(postgres_url)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)

        def cleanup() -> None:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    engine = open_engine(url)
    upgrade(engine)
    engine.dispose()
    return url, cleanup


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--numbers", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=3_000)
    parser.add_argument("--postgres-url", default=None, help="also measure the store on this PostgreSQL")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []

    def record(name: str, result: dict[str, Any]) -> None:
        rows.append({"scenario": name, **result})
        print(f"{name:<28} " + "  ".join(f"{k}={v}" for k, v in result.items()), flush=True)

    engines = ["sqlite"] + (["postgresql"] if args.postgres_url else [])
    sandbox = SandboxProcess(args.numbers, args.calls, agents=args.agents)
    cleanups = []
    try:
        for latency_ms in (0, 20):
            sandbox.faults(latency_s=latency_ms / 1000, rate_limit=0)
            record(f"list_numbers {latency_ms}ms", run_child("list_numbers", url=sandbox.url))
        sandbox.faults(latency_s=0, rate_limit=0)
        stores = {}
        for kind in engines:
            url, cleanup = fresh_store(kind, args.postgres_url)
            cleanups.append(cleanup)
            stores[kind] = url
        clock = httpx.get(sandbox.url + "/_sandbox/clock", headers=sandbox.headers).json()["now"]
        for kind, url in stores.items():
            record(f"sync_full {kind}", run_child("sync", url=sandbox.url, database_url=url, as_of=clock))
        sandbox.advance(1)
        clock = httpx.get(sandbox.url + "/_sandbox/clock", headers=sandbox.headers).json()["now"]
        for kind, url in stores.items():
            record(f"sync_incremental {kind}", run_child("sync", url=sandbox.url, database_url=url, as_of=clock))
        for kind, url in stores.items():
            record(f"report_nightly {kind}", run_child("report_nightly", database_url=url,
                                                       out=str(OUT / f"nightly-{kind}")))
    finally:
        sandbox.stop()
        for cleanup in cleanups:
            cleanup()
    path = OUT / f"bench-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(rows, indent=2))
    print(f"written {path}")


if __name__ == "__main__":
    main()
