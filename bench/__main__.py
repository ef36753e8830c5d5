"""`make bench`: the job at scale against a sandbox in its own process, beside its floors.

One table on stdout, and the same figures as JSON in var/bench/. Every job figure is
measured in a fresh interpreter (peak RSS is that process's), beside its floor from the
same run on the same sandbox:

- sync_full / sync_incremental: floor = the larger of fetch_floor (every page the sync
  reads, decoded and dropped) and insert_floor (the rows that sync wrote, bulk-inserted
  into an empty store of the same engine: executemany on SQLite, COPY on PostgreSQL):
  fetching and writing can overlap, so the sum is no floor.
- baseline_first_night / baseline_night: `bench/baseline.py`, the script a user would
  write instead (httpx on 4 threads, pandas `to_sql`, `to_csv`, `to_html`), run as its
  first and second night against the same sandbox, into its own SQLite file. The
  `night` row sets sync_incremental + report_nightly beside baseline_night, and
  sync_full is set beside baseline_first_night (targets: at most 0.5x and 0.8x);
  `first_night` sets sync_full + report_first_night beside it too.
- report_first_night: the nightly report of the first run, as the nightly job writes it
  after its first sync. The second night's report (report_nightly) follows it, as it
  does in production: its flags carry on the first night's streaks (until this row was
  added the bench skipped it, and the second night's report did the first night's work).
- sync_throttled: the sandbox at its contract rate limit (20/s) with 20 ms latency, on a
  20,000-number account; floor = requests / 20 per second.
- report_nightly, report_monthly: no floor (targets: under 10 s and 500 MB). Peak MB is the
  report's own process; its forked copy (`reconcile.alongside`) shares that memory and adds
  its private pages, shown in the notes (both together peak at most at their sum).

`--postgres-url` adds PostgreSQL beside SQLite. `--curve` instead runs the first sync,
the incremental night and the report at 25,000, 100,000 and 400,000 numbers (10 calls
per number) and prints wall time and peak RSS per size. Nothing here is part of `make test`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.harness import ROOT, SandboxProcess, run_child
from reconcile.clock import format_timestamp, parse_timestamp
from reconcile.store.database import open_engine, upgrade

OUT = ROOT / "var" / "bench"
RATE_LIMIT = 20
SLICES = 8          # as the default config: call slices = truedy.max_concurrency
BACKFILL_DAYS = 90  # sync.calls_backfill_days
OVERLAP_MIN = 120   # sync.calls_overlap_minutes


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


class Bench:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.started = time.monotonic()

    def record(self, scenario: str, engine: str, result: dict[str, Any], floor_s: float | None = None,
               floor_note: str = "") -> dict[str, Any]:
        row = {"scenario": scenario, "engine": engine, **result}
        if floor_s:
            row["floor_s"] = round(floor_s, 2)
            row["ratio"] = round(result["wall_s"] / floor_s, 2)
            row["floor"] = floor_note
        self.rows.append(row)
        shown = {k: v for k, v in row.items() if k not in ("scenario", "engine")}
        print(f"[{time.monotonic() - self.started:6.0f} s] {scenario} {engine}: {json.dumps(shown)}", flush=True)
        return row


def clock_of(sandbox: SandboxProcess) -> str:
    return httpx.get(sandbox.url + "/_sandbox/clock", headers=sandbox.headers, timeout=30).json()["now"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--numbers", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=3_000)
    parser.add_argument("--throttled-numbers", type=int, default=20_000)
    parser.add_argument("--postgres-url", default=None, help="also measure the store on this PostgreSQL")
    parser.add_argument("--keep", action="store_true", help="keep the 100k stores (to profile against them)")
    parser.add_argument("--only", choices=["scale", "throttled"], default=None, help="run one half of the bench")
    parser.add_argument("--curve", action="store_true", help="the scale curve: 25k, 100k and 400k numbers")
    parser.add_argument("--sizes", default="25000,100000,400000", help="the curve's sizes (numbers)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    bench = Bench()
    if args.curve:
        curve(bench, [int(size) for size in args.sizes.split(",")])
        return
    engines = ["sqlite"] + (["postgresql"] if args.postgres_url else [])
    cleanups = []
    if args.only != "throttled":
        scale(args, bench, engines, cleanups)
    if args.only != "scale":
        throttled(args, bench, cleanups)
    for cleanup in cleanups:
        cleanup()
    table = format_table(bench.rows)
    print()
    print(table)
    path = OUT / f"bench-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"args": vars(args), "total_s": round(time.monotonic() - bench.started),
                                "rows": bench.rows}, indent=2))
    print(f"\n{len(bench.rows)} measurements in {time.monotonic() - bench.started:.0f} s; written {path}")


def scale(args: argparse.Namespace, bench: Bench, engines: list[str], cleanups: list[Any]) -> None:
    """The 100,000-number account: syncs beside their floors, then the reports."""
    print(f"starting a sandbox of {args.numbers:,} numbers, {args.agents:,} agents, {args.calls:,} calls ...", flush=True)
    sandbox = SandboxProcess(args.numbers, args.calls, agents=args.agents)
    try:
        sandbox.faults(latency_s=0, rate_limit=0)
        stores, floors = {}, {}
        for kind in engines:
            stores[kind], cleanup = fresh_store(kind, args.postgres_url)
            floors[kind], floor_cleanup = fresh_store(kind, args.postgres_url)
            cleanups += [floor_cleanup] if args.keep else [cleanup, floor_cleanup]
            if args.keep:
                print(f"keeping the {kind} store: {make_url(stores[kind]).render_as_string()}", flush=True)

        baseline_db = OUT / f"baseline-{uuid.uuid4().hex[:8]}.db"
        cleanups.append(lambda: baseline_db.unlink(missing_ok=True))
        first = clock_of(sandbox)
        backfill = format_timestamp(parse_timestamp(first) - dt.timedelta(days=BACKFILL_DAYS))
        baseline_first = bench.record("baseline_first_night", "sqlite", run_child(
            "baseline", url=sandbox.url, database_url=f"sqlite:///{baseline_db}", out=str(OUT / "baseline-1"),
            as_of=first))
        full = measure_sync(bench, "sync_full", sandbox, stores, floors, after=backfill, as_of=first,
                            baseline=baseline_first)
        for kind, url in stores.items():
            report = bench.record("report_first_night", kind, run_child(
                "report_nightly", database_url=url, out=str(OUT / f"nightly-first-{kind}")))
            first_night = {"wall_s": round(full[kind]["wall_s"] + report["wall_s"], 2),
                           "peak_rss_mb": max(full[kind]["peak_rss_mb"], report["peak_rss_mb"])}
            bench.record("first_night", kind, first_night, baseline_first["wall_s"], "baseline_first_night")
        sandbox.advance(1)
        second = clock_of(sandbox)
        baseline_night = bench.record("baseline_night", "sqlite", run_child(
            "baseline", url=sandbox.url, database_url=f"sqlite:///{baseline_db}", out=str(OUT / "baseline-2"),
            as_of=second))
        overlap = format_timestamp(parse_timestamp(first) - dt.timedelta(minutes=OVERLAP_MIN))
        incremental = measure_sync(bench, "sync_incremental", sandbox, stores, floors, after=overlap, as_of=second)

        # the sandbox builds its invoices on the first request (seconds at this size): not the job's time
        httpx.get(sandbox.url + "/billing/invoices", headers=sandbox.headers, timeout=600).raise_for_status()
        for kind, url in stores.items():
            report = bench.record("report_nightly", kind, run_child("report_nightly", database_url=url,
                                                                    out=str(OUT / f"nightly-{kind}")))
            night = {"wall_s": round(incremental[kind]["wall_s"] + report["wall_s"], 2),
                     "peak_rss_mb": max(incremental[kind]["peak_rss_mb"], report["peak_rss_mb"])}
            bench.record("night", kind, night, baseline_night["wall_s"], "baseline_night")
            bench.record("sync_invoices", kind, run_child("sync_invoices", url=sandbox.url, database_url=url,
                                                          as_of=second))
            bench.record("report_monthly", kind, run_child("report_monthly", database_url=url, as_of=second,
                                                           out=str(OUT / f"monthly-{kind}")))
    finally:
        sandbox.stop()


def measure_sync(bench: Bench, name: str, sandbox: SandboxProcess, stores: dict[str, str], floors: dict[str, str],
                 after: str, as_of: str, baseline: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """One night's sync into each store, beside its floor (the larger of the pages it reads and the rows it wrote)
    and, when given, beside the baseline's same night."""
    fetch = bench.record("fetch_floor", "-", run_child("fetch_floor", url=sandbox.url, after=after, before=as_of,
                                                       slices=SLICES))
    results = {}
    for kind, url in stores.items():
        sync = run_child("sync", url=sandbox.url, database_url=url, as_of=as_of, slices=SLICES)
        insert = bench.record("insert_floor", kind, run_child("insert_floor", source_url=url,
                                                              target_url=floors[kind], run_id=sync["run_id"]))
        if baseline:
            sync["baseline_ratio"] = round(sync["wall_s"] / baseline["wall_s"], 2)
        results[kind] = bench.record(name, kind, sync, max(fetch["wall_s"], insert["wall_s"]), "max(fetch, insert)")
    return results


def curve(bench: Bench, sizes: list[int]) -> None:
    """The first sync, the incremental night and its report per size (10 calls per number): wall time, peak RSS.
    The first night's report runs between the two nights (recorded, not in the table), as the nightly job does."""
    rows = []
    for size in sizes:
        print(f"starting a sandbox of {size:,} numbers and {size * 10:,} calls ...", flush=True)
        started = time.monotonic()
        sandbox = SandboxProcess(size, size * 10, agents=max(30, size // 33))
        setup_s = time.monotonic() - started
        url, cleanup = fresh_store("sqlite", None)
        try:
            sandbox.faults(latency_s=0, rate_limit=0)
            first = clock_of(sandbox)
            full = bench.record("sync_full", f"{size:,}", run_child("sync", url=sandbox.url, database_url=url,
                                                                     as_of=first, slices=SLICES))
            bench.record("report_first_night", f"{size:,}", run_child(
                "report_nightly", database_url=url, out=str(OUT / f"curve-first-{size}")))
            sandbox.advance(1)
            second = clock_of(sandbox)
            incremental = bench.record("sync_incremental", f"{size:,}", run_child(
                "sync", url=sandbox.url, database_url=url, as_of=second, slices=SLICES))
            report = bench.record("report_nightly", f"{size:,}", run_child(
                "report_nightly", database_url=url, out=str(OUT / f"curve-{size}")))
            rows.append((size, setup_s, full, incremental, report))
        finally:
            sandbox.stop()
            cleanup()
    print()
    print(format_curve(rows))
    path = OUT / f"curve-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"sizes": sizes, "rows": bench.rows}, indent=2))
    print(f"\nwritten {path}")


def format_curve(rows: list[tuple[int, float, dict[str, Any], dict[str, Any], dict[str, Any]]]) -> str:
    """Per size: each step's wall time and peak RSS (the report's forked copy: its own pages), and the night's
    time per 1,000 numbers (linear means flat)."""
    header = f"{'numbers':>9}  {'calls':>10}  {'sync_full s':>11}  {'MB':>5}  {'night sync s':>12}  {'MB':>5}  " \
             f"{'report s':>8}  {'MB':>5}  {'+copy MB':>8}  {'night s / 1k numbers':>20}  {'sandbox start s':>15}"
    out = [header, "-" * len(header)]
    for size, setup_s, full, incremental, report in rows:
        night = incremental["wall_s"] + report["wall_s"]
        out.append(f"{size:>9,}  {full['calls_added']:>10,}  {full['wall_s']:>11.1f}  {full['peak_rss_mb']:>5.0f}  "
                   f"{incremental['wall_s']:>12.1f}  {incremental['peak_rss_mb']:>5.0f}  {report['wall_s']:>8.1f}  "
                   f"{report['peak_rss_mb']:>5.0f}  {report.get('copy_private_mb', 0):>8.0f}  "
                   f"{night / size * 1000:>20.3f}  {setup_s:>15.0f}")
    return "\n".join(out)


def throttled(args: argparse.Namespace, bench: Bench, cleanups: list[Any]) -> None:
    """A first sync against the contract's rate limit with 20 ms latency: how close to requests / limit."""
    print(f"starting a sandbox of {args.throttled_numbers:,} numbers at {RATE_LIMIT} requests/s and 20 ms ...",
          flush=True)
    sandbox = SandboxProcess(args.throttled_numbers, args.throttled_numbers * 10, seed=8)
    try:
        sandbox.faults(latency_s=0.02, rate_limit=RATE_LIMIT)
        url, cleanup = fresh_store("sqlite", None)
        cleanups.append(cleanup)
        result = run_child("sync", url=sandbox.url, database_url=url, as_of=clock_of(sandbox), slices=SLICES)
        result["http_429_share"] = round(result["http_429"] / max(result["requests"], 1), 4)
        bench.record("sync_throttled", "sqlite", result, result["requests"] / RATE_LIMIT, f"requests / {RATE_LIMIT} per s")
    finally:
        sandbox.stop()


def format_table(rows: list[dict[str, Any]]) -> str:
    header = ["scenario", "engine", "wall s", "floor s", "ratio", "requests", "records/s", "peak MB", "db MB", "notes"]
    lines = []
    for row in rows:
        if row["scenario"] in ("fetch_floor", "insert_floor"):
            continue
        records = row.get("calls_added", 0) + row.get("numbers", 0) if row["scenario"].startswith("sync_") else 0
        if row["scenario"] == "sync_invoices":
            records = row.get("lines", 0)
        notes = []
        if "http_429" in row and row["scenario"] == "sync_throttled":
            notes.append(f"429s {row['http_429']} ({row['http_429_share']:.2%})")
        if "output_mb" in row:
            notes.append(", ".join(f"{k} {v} MB" for k, v in row["output_mb"].items()))
        if "flagged" in row:
            notes.append(f"{row['flagged']:,} flagged")
        if "baseline_ratio" in row:
            notes.append(f"{row['baseline_ratio']:.2f}x baseline_first_night")
        if "findings" in row:
            notes.append(f"{row['findings']} findings, {row['focus_rows']:,} FOCUS rows")
        if row.get("copy_private_mb"):
            notes.append(f"its forked copy adds {row['copy_private_mb']:.0f} MB of its own")
        lines.append([row["scenario"], row["engine"], f"{row['wall_s']:.1f}", f"{row['floor_s']:.1f}" if "floor_s" in row else "",
                      f"{row['ratio']:.2f}" if "ratio" in row else "", str(row.get("requests", "")),
                      f"{records / row['wall_s']:,.0f}" if records and row["wall_s"] else "",
                      f"{row['peak_rss_mb']:.0f}", str(row.get("db_mb", "")), "; ".join(notes)])
    floors = [r for r in rows if r["scenario"] in ("fetch_floor", "insert_floor")]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)] if lines else []
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    out.append("")
    out.append("floors: " + "; ".join(
        f"{r['scenario']} {r['engine']} {r['wall_s']:.1f} s ({r.get('requests', r.get('rows'))} "
        f"{'requests' if 'requests' in r else 'rows'})" for r in floors))
    return "\n".join(out)


if __name__ == "__main__":
    main()
