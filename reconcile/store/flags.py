"""Flag history in the store: streaks opened, continued and resolved per evaluated run."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Connection, bindparam, func, or_, select, update

from reconcile.analysis.history import OpenStreak, StreakPlan
from reconcile.store.readers import query_frame
from reconcile.store.schema import flag_history, open_at, sync_runs
from reconcile.store.types import money_sum, money_total
from reconcile.store.writer import bulk_insert, get_state, set_state

EVALUATED = "flags_evaluated_run"


def last_evaluated_run(connection: Connection) -> int:
    value = get_state(connection, EVALUATED)
    return int(value) if value else 0


def open_streaks(connection: Connection) -> dict[str, OpenStreak]:
    h = flag_history.c
    query = select(h.number_id, h.id, h.flag, h.monthly_savings, h.currency).where(h.resolved_run.is_(None))
    return {row[0]: OpenStreak(row[1], row[2], row[3], row[4]) for row in connection.execute(query)}


def record_streaks(connection: Connection, plan: StreakPlan, run_id: int, as_of: dt.datetime) -> None:
    if plan.new:  # by the driver's bulk path: a first evaluation opens a streak per flagged number
        bulk_insert(connection, flag_history, (
            {"number_id": item["number_id"], "flag": item["flag"], "first_flagged_at": as_of,
             "first_flagged_run": run_id, "last_flagged_run": run_id, "monthly_savings": item["monthly_savings"],
             "currency": item["currency"], "resolved_at": None, "resolved_run": None, "resolution": None}
            for item in plan.new))
    if plan.continued:  # the streaks that go on with another flag or saving
        connection.execute(
            update(flag_history).where(flag_history.c.id == bindparam("streak_id")).values(
                flag=bindparam("flag"), monthly_savings=bindparam("monthly_savings"), currency=bindparam("currency")),
            [{"streak_id": item["id"], "flag": item["flag"], "monthly_savings": item["monthly_savings"],
              "currency": item["currency"]} for item in plan.continued])
    if plan.resolved:
        connection.execute(
            update(flag_history).where(flag_history.c.id == bindparam("streak_id")).values(
                resolved_at=as_of, resolved_run=run_id, resolution=bindparam("how")),
            [{"streak_id": streak_id, "how": how} for streak_id, how in plan.resolved])
    # every streak still open goes on to this run: one statement, not a row at a time for every flagged number
    connection.execute(update(flag_history).where(flag_history.c.resolved_run.is_(None),
                                                  flag_history.c.last_flagged_run < run_id)
                       .values(last_flagged_run=run_id))
    set_state(connection, EVALUATED, str(run_id), run_id)


def _open_at(run: Any) -> ColumnElement[bool]:
    return open_at(flag_history.c.first_flagged_run, flag_history.c.resolved_run, run)


def first_flagged_as_of(connection: Connection, run_id: int) -> dict[str, dt.datetime]:
    query = select(flag_history.c.number_id, flag_history.c.first_flagged_at).where(_open_at(run_id))
    return dict(connection.execute(query).all())


def flagged_by_rule(connection: Connection, run_id: int) -> dict[str, int]:
    """Flagged numbers per rule at `run_id` (the streaks open then)."""
    query = (select(flag_history.c.flag, func.count()).where(_open_at(run_id)).group_by(flag_history.c.flag))
    return {flag: int(count) for flag, count in connection.execute(query)}


def streak_events(connection: Connection, run_id: int) -> pd.DataFrame:
    """Streaks that began or ended at `run_id`, oldest first: the columns the nightly page reads."""
    h = flag_history.c
    query = (select(h.number_id, h.flag, h.first_flagged_run, h.resolved_run, h.resolution)
             .where(or_(h.first_flagged_run == run_id, h.resolved_run == run_id)).order_by(h.id))
    return query_frame(connection, query)


def waste_by_run(connection: Connection, run_ids: list[int]) -> pd.DataFrame:
    """Per run and currency: flagged numbers and their monthly savings (streaks open at that run)."""
    run = sync_runs.alias("r")
    query = (
        select(run.c.id.label("run_id"), flag_history.c.currency, func.count().label("flagged"),
               *money_sum(flag_history.c.monthly_savings, "waste"))
        .select_from(run.join(flag_history, _open_at(run.c.id)))
        .where(run.c.id.in_(run_ids), flag_history.c.currency.is_not(None))
        .group_by(run.c.id, flag_history.c.currency)
    )
    rows = [(run_id, currency, flagged, money_total(units, rest))
            for run_id, currency, flagged, units, rest in connection.execute(query)]
    return pd.DataFrame(rows, columns=["run_id", "currency", "flagged", "waste"])


def realised_savings(connection: Connection, since_run: int = 0, until_run: int | None = None) -> pd.DataFrame:
    """Flag streaks that ended because the number was released: savings actually made, per month."""
    query = (select(flag_history, sync_runs.c.as_of.label("released_seen_at"))
             .join(sync_runs, sync_runs.c.id == flag_history.c.resolved_run)
             .where(flag_history.c.resolution == "released", flag_history.c.resolved_run > since_run))
    if until_run is not None:
        query = query.where(flag_history.c.resolved_run <= until_run)
    result = connection.execute(query)
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
