"""Writes to the store: run rows, version plans, calls, state and data issues."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, insert, select, update

from reconcile.store.schema import calls, data_issues, sync_runs, sync_state
from reconcile.store.snapshot import VersionPlan
from reconcile.truedy.records import DataIssue

CHUNK = 900  # ids per IN (...) clause, under every engine's parameter limit


def abandon_stale_runs(engine: Engine, now: dt.datetime) -> int:
    """Runs still marked running were killed (we hold the lock): mark them abandoned."""
    with engine.begin() as connection:
        result = connection.execute(
            update(sync_runs).where(sync_runs.c.status == "running")
            .values(status="abandoned", finished_at=now, error="the process ended before the run committed")
        )
        return result.rowcount or 0


def begin_run(engine: Engine, as_of: dt.datetime, started_at: dt.datetime) -> int:
    with engine.begin() as connection:
        result = connection.execute(insert(sync_runs).values(started_at=started_at, as_of=as_of, status="running"))
        return int(result.inserted_primary_key[0])


def finish_run(connection: Connection, run_id: int, finished_at: dt.datetime, counts: dict[str, Any]) -> None:
    connection.execute(
        update(sync_runs).where(sync_runs.c.id == run_id)
        .values(status="complete", finished_at=finished_at, counts=json.dumps(counts, sort_keys=True))
    )


def fail_run(engine: Engine, run_id: int, finished_at: dt.datetime, error: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(sync_runs).where(sync_runs.c.id == run_id)
            .values(status="failed", finished_at=finished_at, error=error[:1000])
        )


def open_versions(connection: Connection, table: Table, key: str) -> dict[str, tuple[int, str, str]]:
    """key -> (version id, row hash, status) of every open version."""
    query = select(table.c[key], table.c.version_id, table.c.row_hash, table.c.status).where(table.c.valid_to_run.is_(None))
    return {row[0]: (row[1], row[2], row[3]) for row in connection.execute(query)}


def apply_plan(connection: Connection, table: Table, plan: VersionPlan, run_id: int) -> None:
    for start in range(0, len(plan.to_close), CHUNK):
        chunk = plan.to_close[start:start + CHUNK]
        connection.execute(update(table).where(table.c.version_id.in_(chunk)).values(valid_to_run=run_id))
    if plan.to_open:
        rows = [{**row, "valid_from_run": run_id, "valid_to_run": None} for row in plan.to_open]
        for start in range(0, len(rows), 5000):
            connection.execute(insert(table), rows[start:start + 5000])


def existing_call_ids(connection: Connection, after: dt.datetime, before: dt.datetime) -> set[str]:
    query = select(calls.c.call_id).where(and_(calls.c.started_at >= after, calls.c.started_at < before))
    return set(connection.execute(query).scalars())


def insert_calls(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        connection.execute(insert(calls), list(rows))


def record_issues(connection: Connection, run_id: int, issues: Iterable[DataIssue]) -> int:
    rows = [
        {"sync_run_id": run_id, "record_type": i.record_type, "record_id": i.record_id[:100],
         "field": i.field[:100], "reason": i.reason[:500]}
        for i in issues
    ]
    if rows:
        connection.execute(insert(data_issues), rows)
    return len(rows)


def get_state(connection: Connection, key: str) -> str | None:
    return connection.execute(select(sync_state.c.value).where(sync_state.c.key == key)).scalar()


def set_state(connection: Connection, key: str, value: str, run_id: int) -> None:
    if connection.execute(update(sync_state).where(sync_state.c.key == key)
                          .values(value=value, sync_run_id=run_id)).rowcount == 0:
        connection.execute(insert(sync_state).values(key=key, value=value, sync_run_id=run_id))
