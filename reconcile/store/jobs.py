"""Job history in the store: what ran, how it was started, how it ended, whether ops were alerted."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, func, insert, select, update

from reconcile.redaction import safe_line
from reconcile.store.schema import job_runs
from reconcile.store.types import new_id


@dataclass(frozen=True)
class JobRun:
    id: int
    job: str
    trigger: str
    slot: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    status: str
    exit_code: int | None
    summary: str | None
    alerted: bool


def start(engine: Engine, job: str, trigger: str, slot: str | None, now: dt.datetime) -> int:
    with engine.begin() as connection:
        result = connection.execute(insert(job_runs).values(job=job, trigger=trigger, slot=slot, started_at=now,
                                                            status="running", alerted=False))
        return new_id(result.inserted_primary_key)


def finish(engine: Engine, run_id: int, status: str, exit_code: int, summary: str, now: dt.datetime) -> None:
    with engine.begin() as connection:
        connection.execute(update(job_runs).where(job_runs.c.id == run_id).values(
            status=status, exit_code=exit_code, summary=safe_line(summary, 1000), finished_at=now))


def record_skipped(engine: Engine, job: str, trigger: str, slot: str | None, summary: str, now: dt.datetime) -> None:
    with engine.begin() as connection:
        connection.execute(insert(job_runs).values(job=job, trigger=trigger, slot=slot, started_at=now,
                                                   finished_at=now, status="skipped", exit_code=5,
                                                   summary=safe_line(summary, 1000), alerted=False))


def abandon_running(engine: Engine, now: dt.datetime) -> int:
    """Runs still marked running while we hold the lock were killed."""
    with engine.begin() as connection:
        return connection.execute(update(job_runs).where(job_runs.c.status == "running").values(
            status="abandoned", finished_at=now, summary="the process ended before the job finished")).rowcount or 0


def ran_for_slot(engine: Engine, job: str, slot: str) -> bool:
    """Whether this job already ran (or failed) for this wall-clock slot; skipped runs do not count."""
    with engine.connect() as connection:
        query = select(func.count()).select_from(job_runs).where(
            job_runs.c.job == job, job_runs.c.slot == slot, job_runs.c.status.in_(("running", "succeeded", "failed")))
        return bool(connection.execute(query).scalar())


def alerted_for_slot(engine: Engine, job: str, slot: str | None) -> bool:
    if slot is None:
        return False
    with engine.connect() as connection:
        query = select(func.count()).select_from(job_runs).where(
            job_runs.c.job == job, job_runs.c.slot == slot, job_runs.c.alerted.is_(True))
        return bool(connection.execute(query).scalar())


def mark_alerted(engine: Engine, run_id: int) -> None:
    with engine.begin() as connection:
        connection.execute(update(job_runs).where(job_runs.c.id == run_id).values(alerted=True))


def recent(engine: Engine, job: str, limit: int = 5) -> list[JobRun]:
    with engine.connect() as connection:
        rows = connection.execute(select(job_runs).where(job_runs.c.job == job)
                                  .order_by(job_runs.c.id.desc()).limit(limit))
        return [JobRun(**row._mapping) for row in rows]
