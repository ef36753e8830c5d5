"""Heartbeats in the store: a long-running process says it is alive; status reads when it last did."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, insert, select, update

from reconcile.store.schema import heartbeats

SCHEDULER = "scheduler"


def beat(engine: Engine, name: str, now: dt.datetime, detail: str = "") -> None:
    with engine.begin() as connection:
        done = connection.execute(update(heartbeats).where(heartbeats.c.name == name)
                                  .values(seen_at=now, detail=detail))
        if not done.rowcount:
            connection.execute(insert(heartbeats).values(name=name, seen_at=now, detail=detail))


def last_seen(engine: Engine, name: str) -> tuple[dt.datetime, str] | None:
    """When `name` last beat, and its detail; None when it never did."""
    with engine.connect() as connection:
        row = connection.execute(select(heartbeats.c.seen_at, heartbeats.c.detail)
                                 .where(heartbeats.c.name == name)).first()
    return None if row is None else (row.seen_at, row.detail or "")
