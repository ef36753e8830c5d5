"""One sync run: the Truedy API into the store, atomically.

Reads happen first: the calls since the watermark (into a temporary table of the session
that will commit them, while a thread reads the store's open versions), then the listings
(agents, numbers active/pending and released, side by side; confirmation of numbers that
vanished from them). Then one transaction writes every version, the calls, the data
issues and the new watermark, and marks the run complete. A failure or a kill before that
commit leaves no versions, no calls and no watermark move; the run row says `failed` (or
`abandoned`, found by the next run).
The caller holds the run lock (`reconcile.store.lock.RunLock`).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from reconcile.bulk import bulk_work
from reconcile.clock import Clock, format_timestamp, parse_timestamp
from reconcile.errors import ConfigError, StoreError, describe
from reconcile.progress import NullProgress, Progress
from reconcile.store import writer
from reconcile.store.database import first_line
from reconcile.store.schema import agent_versions, number_versions
from reconcile.store.snapshot import (
    OpenVersion,
    VersionPlan,
    agent_row,
    merge_number_listings,
    number_row,
    numbers_to_confirm,
    plan_versions,
)
from reconcile.store.staging import CallStaging
from reconcile.truedy.client import TruedyClient
from reconcile.truedy.records import Call, DataIssue, PhoneNumber

log = logging.getLogger("reconcile.sync")

WATERMARK = "calls_watermark"
CALL_BATCH = 10_000
MAX_CLOCK_SKEW = dt.timedelta(minutes=10)  # how far a run may be dated ahead of the upstream's Date header


@dataclass(frozen=True)
class SyncOptions:
    calls_backfill_days: int = 90
    calls_overlap_minutes: int = 120
    call_slices: int = 4


@dataclass
class SyncSummary:
    run_id: int
    as_of: dt.datetime
    numbers_seen: int = 0
    agents_seen: int = 0
    versions_opened: int = 0
    versions_closed: int = 0
    numbers_confirmed_gone: int = 0
    calls_added: int = 0
    data_issues: int = 0
    requests: int = 0
    rate_limited: int = 0     # answers 429
    listing_passes: int = 0
    duration_s: float = 0.0

    def line(self) -> str:
        return (
            f"sync run {self.run_id} complete as of {format_timestamp(self.as_of)}: "
            f"{self.numbers_seen:,} numbers seen, {self.versions_opened:,} versions opened, "
            f"{self.versions_closed:,} closed, {self.calls_added:,} calls added, "
            f"{self.data_issues:,} data issues, {self.duration_s:.1f} s"
        )


def check_moves_forward(as_of: dt.datetime, newest_complete: dt.datetime | None) -> None:
    """A run is never dated before the newest complete run (pure)."""
    if newest_complete is not None and as_of < newest_complete:
        raise ConfigError(f"a run dated {format_timestamp(as_of)} would come before the newest complete run "
                          f"({format_timestamp(newest_complete)}): runs only move forward; use a later --as-of "
                          "or none")


def check_not_ahead(as_of: dt.datetime, upstream_now: dt.datetime | None, skew: dt.timedelta = MAX_CLOCK_SKEW) -> None:
    """A run is never dated past the upstream's own clock (its Date header), give or take `skew` (pure)."""
    if upstream_now is not None and as_of > upstream_now + skew:
        raise ConfigError(f"a run dated {format_timestamp(as_of)} is ahead of the Truedy API's own clock "
                          f"({format_timestamp(upstream_now)}) by more than {skew.total_seconds() / 60:.0f} minutes: "
                          "calls not yet placed would be taken as missing; use an earlier --as-of or fix this "
                          "machine's clock")


@bulk_work()
def run_sync(
    client: TruedyClient, engine: Engine, *, clock: Clock, options: SyncOptions | None = None,
    progress: Progress | None = None,
) -> SyncSummary:
    options = options or SyncOptions()
    progress = progress or NullProgress()
    started = time.monotonic()
    as_of = clock()
    try:
        check_moves_forward(as_of, writer.newest_complete_as_of(engine))
        abandoned = writer.abandon_stale_runs(engine, as_of)
        if abandoned:
            log.warning("marked %d earlier run(s) abandoned: they ended before committing", abandoned)
        run_id = writer.begin_run(engine, as_of, as_of)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot start a sync run: {first_line(exc)}") from None
    summary = SyncSummary(run_id=run_id, as_of=as_of)
    try:
        _sync(client, engine, options, progress, summary)
    except BaseException as exc:
        progress.abort()
        try:
            writer.fail_run(engine, run_id, as_of, describe(exc))
        except SQLAlchemyError:
            log.error("could not mark run %d failed; the next run will mark it abandoned", run_id)
        if isinstance(exc, SQLAlchemyError):
            raise StoreError(f"database error during sync run {run_id}: {first_line(exc)}; nothing was committed") from None
        raise
    summary.duration_s = time.monotonic() - started
    summary.requests, summary.rate_limited = client.stats.requests, client.stats.by_status[429]
    return summary


def _sync(client: TruedyClient, engine: Engine, options: SyncOptions, progress: Progress, summary: SyncSummary) -> None:
    run_id, as_of = summary.run_id, summary.as_of
    issues: list[DataIssue] = []
    with engine.connect() as connection:
        watermark = writer.get_state(connection, WATERMARK)
    if watermark:
        after = parse_timestamp(watermark) - dt.timedelta(minutes=options.calls_overlap_minutes)
    else:
        after = as_of - dt.timedelta(days=options.calls_backfill_days)

    # one session from the first call downloaded to the commit: its temporary table holds the calls
    # (store/staging.py), so the store's write lock lasts only for the final commit
    with engine.connect() as connection, CallStaging(connection) as staging:
        # the calls first, while a thread reads the store's open versions: the API and the store busy at once
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="open-versions") as pool:
            stored = pool.submit(contextvars.copy_context().run, _open_versions, engine)
            progress.phase("calls")
            issues += _download_calls(client, staging, after, as_of, options, progress, run_id)
            open_numbers, open_agents = stored.result()
        check_not_ahead(as_of, client.server_date)  # the answers carried the upstream's clock; nothing is written yet
        number_plan, agent_plan, rehashed = _plan_versions(client, progress, summary, issues, open_numbers,
                                                           open_agents)
        progress.phase("commit")
        with connection.begin():
            writer.apply_plan(connection, agent_versions, agent_plan, run_id)
            writer.apply_plan(connection, number_versions, number_plan, run_id)
            writer.set_source_hashes(connection, number_versions, rehashed)
            summary.versions_opened = len(number_plan.to_open) + len(agent_plan.to_open)
            summary.versions_closed = len(number_plan.to_close) + len(agent_plan.to_close)
            if not watermark:
                writer.set_state(connection, writer.CALLS_COVERED_FROM, format_timestamp(after), run_id)
            summary.calls_added = staging.commit_into_calls()
            summary.data_issues = writer.record_issues(connection, run_id, issues)
            writer.set_state(connection, WATERMARK, format_timestamp(as_of), run_id)
            progress.finish()
            summary.requests, summary.rate_limited = client.stats.requests, client.stats.by_status[429]
            counts = {k: v for k, v in asdict(summary).items() if k not in ("run_id", "as_of", "duration_s")}
            writer.finish_run(connection, run_id, as_of, counts)
    for issue in issues[:20]:
        log.warning("data issue: %s", issue.describe())
    if len(issues) > 20:
        log.warning("... and %d more data issues (see the nightly report)", len(issues) - 20)


def _open_versions(engine: Engine) -> tuple[dict[str, OpenVersion], dict[str, OpenVersion]]:
    with engine.connect() as connection:
        return (writer.open_versions(connection, number_versions, "number_id"),
                writer.open_versions(connection, agent_versions, "agent_id"))


def _download_calls(client: TruedyClient, staging: CallStaging, after: dt.datetime, before: dt.datetime,
                    options: SyncOptions, progress: Progress, run_id: int) -> list[DataIssue]:
    """The calls started in [after, before) into the staging table, 10,000 rows at a time; their data issues."""
    issues: list[DataIssue] = []
    batch: list[Call] = []
    for page in client.iter_calls(after, before, slices=options.call_slices):
        issues += page.issues
        batch += page.calls  # calls stored already: skipped at the commit
        if len(batch) >= CALL_BATCH:
            staging.add_calls(batch, run_id)
            batch = []
        progress.advance(len(page.calls))
    staging.add_calls(batch, run_id)
    return issues


def _plan_versions(client: TruedyClient, progress: Progress, summary: SyncSummary, issues: list[DataIssue],
                   open_numbers: dict[str, OpenVersion], open_agents: dict[str, OpenVersion],
                   ) -> tuple[VersionPlan, VersionPlan, list[tuple[int, str]]]:
    """The listings read and set against the open versions: what to open and close, and the unchanged
    versions whose upstream record now reads otherwise (version id, new fingerprint)."""
    known = {v.source_hash: key for key, v in open_numbers.items() if v.source_hash}  # fingerprint -> number id

    # the three listings at once: their first pages and last stragglers overlap
    # (requests still share the client's workers, connection pool and rate pacer)
    progress.phase("listings")
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="listing") as pool:
        agents_listing = pool.submit(contextvars.copy_context().run, client.list_agents)
        released_listing = pool.submit(contextvars.copy_context().run, client.list_numbers, "released", known)
        live = client.list_numbers(known=known)
        released = released_listing.result()
        agents = agents_listing.result()
    progress.advance(len(agents.records) + len(live.records) + len(live.unchanged) + len(released.records)
                     + len(released.unchanged))
    issues += agents.issues + live.issues + released.issues
    summary.listing_passes = live.passes + released.passes
    numbers = merge_number_listings(live.records, released.records)
    fingerprints = {**live.fingerprints, **released.fingerprints}
    unchanged = (live.unchanged | released.unchanged) - set(numbers)  # served exactly as stored
    seen = set(numbers) | unchanged | {issue.record_id for issue in live.issues + released.issues}
    del live, released  # `numbers` holds every parsed record now

    to_confirm = numbers_to_confirm(open_numbers, seen)
    gone: set[str] = set()
    if to_confirm:
        progress.phase("confirming vanished numbers", total=len(to_confirm))
        for number_id, outcome in zip(to_confirm, client.get_numbers(to_confirm), strict=True):
            if isinstance(outcome, PhoneNumber):
                numbers[number_id] = outcome
            elif isinstance(outcome, DataIssue):
                issues.append(outcome)
            else:
                gone.add(number_id)
            progress.advance()
    summary.numbers_seen = len(numbers) + len(unchanged)
    summary.agents_seen = len(agents.records)
    summary.numbers_confirmed_gone = len(gone)

    rows = {}
    for key in list(numbers):  # each parsed record goes as its row is made: never both for every number
        number = numbers.pop(key)
        row = number_row(number)
        row["source_hash"] = fingerprints.get(number.id)
        rows[number.id] = row
    del numbers
    rehashed = [(stored.version_id, row["source_hash"]) for key, row in rows.items()
                if (stored := open_numbers.get(key)) is not None and stored.row_hash == row["row_hash"]
                and row["source_hash"] and stored.source_hash != row["source_hash"]]
    number_plan = plan_versions(open_numbers, rows, gone)
    agent_rows = {a.id: agent_row(a) for a in agents.records}
    agents_gone = set() if agents.drift else set(open_agents) - set(agent_rows) - {i.record_id for i in agents.issues}
    agent_plan = plan_versions(open_agents, agent_rows, agents_gone)
    return number_plan, agent_plan, rehashed

