"""The keep list in the store: who keeps which number, why and until when, and every change since."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Engine, and_, insert, or_, select, update

from reconcile.store.schema import keeps
from reconcile.store.types import new_id


@dataclass(frozen=True)
class Keep:
    id: int
    number_id: str
    phone_number: str | None
    reason: str
    kept_by: str
    kept_at: dt.datetime
    until: dt.date | None
    ended_at: dt.datetime | None
    ended_by: str | None
    ended_reason: str | None

    def in_force(self, now: dt.datetime) -> bool:
        return self.ended_at is None and (self.until is None or self.until >= now.astimezone(dt.UTC).date())


def _in_force(now: dt.datetime) -> ColumnElement[bool]:
    return and_(keeps.c.ended_at.is_(None), or_(keeps.c.until.is_(None), keeps.c.until >= now.astimezone(dt.UTC).date()))


def kept_ids(connection: Connection, now: dt.datetime) -> frozenset[str]:
    """The numbers kept at `now`."""
    return frozenset(connection.execute(select(keeps.c.number_id).where(_in_force(now))).scalars())


def keep(engine: Engine, number_id: str, phone_number: str | None, reason: str, by: str, now: dt.datetime,
         until: dt.date | None) -> tuple[int, int]:
    """Keep a number; a keep already in force for it is ended first (replaced, in the history).
    Returns (the new keep's id, how many it replaced)."""
    with engine.begin() as connection:
        replaced = connection.execute(update(keeps).where(keeps.c.number_id == number_id, _in_force(now)).values(
            ended_at=now, ended_by=by, ended_reason="replaced by a new keep")).rowcount or 0
        result = connection.execute(insert(keeps).values(
            number_id=number_id, phone_number=phone_number, reason=reason, kept_by=by, kept_at=now, until=until))
        return new_id(result.inserted_primary_key), replaced


def unkeep(engine: Engine, number_id: str, by: str, reason: str, now: dt.datetime) -> int:
    """End the keep in force for a number; how many ended (0 when it was not kept)."""
    with engine.begin() as connection:
        return connection.execute(update(keeps).where(keeps.c.number_id == number_id, _in_force(now)).values(
            ended_at=now, ended_by=by, ended_reason=reason)).rowcount or 0


def listing(engine: Engine, history: bool = False, now: dt.datetime | None = None) -> list[Keep]:
    """The keeps in force at `now` (or every keep ever, with `history`), newest first."""
    query = select(keeps).order_by(keeps.c.kept_at.desc(), keeps.c.id.desc())
    if not history and now is not None:
        query = query.where(_in_force(now))
    with engine.connect() as connection:
        return [Keep(**row._mapping) for row in connection.execute(query)]
