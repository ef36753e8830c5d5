"""Release plans in the store, and the journal of applying them (one row per number, its state over time)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert, select, update

from reconcile.store.schema import release_items, release_plans
from reconcile.store.types import new_id

FINAL = ("released", "skipped")  # an item in these states is never touched again


@dataclass(frozen=True)
class Plan:
    id: int
    created_at: dt.datetime
    created_by: str
    sync_run_id: int
    release_on: dt.date
    status: str
    criteria: dict[str, Any]
    applied_at: dt.datetime | None


@dataclass(frozen=True)
class Item:
    id: int
    plan_id: int
    number_id: str
    phone_number: str
    flag: str
    reason: str
    monthly_cost: Decimal | None
    currency: str | None
    first_flagged_at: dt.datetime | None
    last_call_at: dt.datetime | None
    inbound_agent_id: str | None
    outbound_agent_id: str | None
    state: str
    detail: str | None
    updated_at: dt.datetime
    released_at: dt.datetime | None


def create(engine: Engine, *, created_at: dt.datetime, created_by: str, sync_run_id: int, release_on: dt.date,
           criteria: dict[str, Any], items: list[dict[str, Any]]) -> int:
    """Store a plan and its items (state `planned`) in one transaction; the plan's id."""
    with engine.begin() as connection:
        plan_id = new_id(connection.execute(insert(release_plans).values(
            created_at=created_at, created_by=created_by, sync_run_id=sync_run_id, release_on=release_on,
            status="planned", criteria=json.dumps(criteria, sort_keys=True))).inserted_primary_key)
        if items:
            connection.execute(insert(release_items), [
                {**item, "plan_id": plan_id, "state": "planned", "updated_at": created_at} for item in items])
    return plan_id


def plan(engine: Engine, plan_id: int) -> tuple[Plan, list[Item]] | None:
    with engine.connect() as connection:
        row = connection.execute(select(release_plans).where(release_plans.c.id == plan_id)).first()
        if row is None:
            return None
        items = [Item(**r._mapping) for r in connection.execute(
            select(release_items).where(release_items.c.plan_id == plan_id).order_by(release_items.c.id))]
    values = dict(row._mapping)
    values["criteria"] = json.loads(values["criteria"])
    return Plan(**values), items


def pending(engine: Engine) -> list[Plan]:
    """Plans not applied yet, the soonest first."""
    with engine.connect() as connection:
        rows = connection.execute(select(release_plans).where(release_plans.c.status == "planned")
                                  .order_by(release_plans.c.release_on, release_plans.c.id)).all()
    return [Plan(**{**r._mapping, "criteria": json.loads(r.criteria)}) for r in rows]


def _open_items() -> Any:
    """(plan, number_id, release_on) of every item still to do in a plan not applied yet."""
    return (select(release_items.c.plan_id, release_items.c.number_id, release_plans.c.release_on)
            .join(release_plans, release_plans.c.id == release_items.c.plan_id)
            .where(release_plans.c.status == "planned", release_items.c.state.not_in(FINAL)))


def pending_counts(engine: Engine) -> list[tuple[Plan, int]]:
    """Plans not applied yet, with how many of their numbers are still to do."""
    with engine.connect() as connection:
        counts = Counter(row.plan_id for row in connection.execute(_open_items()))
    return [(p, counts.get(p.id, 0)) for p in pending(engine)]


def releasing(engine: Engine) -> dict[str, dt.date]:
    """number_id -> the release date of a pending plan that will release it (the soonest)."""
    dates: dict[str, dt.date] = {}
    with engine.connect() as connection:
        for row in connection.execute(_open_items().order_by(release_plans.c.release_on)):
            dates.setdefault(row.number_id, row.release_on)
    return dates


def released_between(engine: Engine, start: dt.datetime, end: dt.datetime) -> list[Item]:
    """Numbers release plans released in [start, end), from the journal."""
    with engine.connect() as connection:
        rows = connection.execute(select(release_items).where(
            release_items.c.state == "released", release_items.c.released_at >= start,
            release_items.c.released_at < end).order_by(release_items.c.released_at, release_items.c.id))
        return [Item(**row._mapping) for row in rows]


def journal(engine: Engine, item_id: int, state: str, detail: str, now: dt.datetime,
            released_at: dt.datetime | None = None) -> None:
    """Record an item's state, committed at once: before the API is asked (`releasing`) and after."""
    values: dict[str, Any] = {"state": state, "detail": detail, "updated_at": now}
    if released_at is not None:
        values["released_at"] = released_at
    with engine.begin() as connection:
        connection.execute(update(release_items).where(release_items.c.id == item_id).values(**values))


def finish(engine: Engine, plan_id: int, now: dt.datetime) -> None:
    with engine.begin() as connection:
        connection.execute(update(release_plans).where(release_plans.c.id == plan_id)
                           .values(status="applied", applied_at=now))
