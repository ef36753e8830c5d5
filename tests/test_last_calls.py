"""Each number's newest call, kept as the calls are stored: the same answer as reading every call."""

from __future__ import annotations

from alembic import command
from sqlalchemy import delete, func, select

from reconcile.store import readers, writer
from reconcile.store.database import _alembic_config, upgrade
from reconcile.store.schema import calls, number_last_call
from tests.test_sync import sync


def from_every_call(connection, before=None) -> dict:
    query = select(calls.c.number_id, func.max(calls.c.started_at)).where(calls.c.number_id.is_not(None))
    if before is not None:
        query = query.where(calls.c.started_at <= before)
    return dict(connection.execute(query.group_by(calls.c.number_id)).all())


def as_read(frame) -> dict:
    return {n: t.to_pydatetime() for n, t in zip(frame["number_id"], frame["last_call_at"], strict=True)}


def test_the_kept_newest_calls_answer_as_every_call_would(make_sandbox, make_client, store):
    server = make_sandbox(numbers=150)
    first = sync(server, store, make_client)
    server.account.advance(days=2)
    second = sync(server, store, make_client)
    with store.connect() as c:
        kept = dict(c.execute(select(number_last_call.c.number_id, number_last_call.c.started_at)).all())
        assert kept == from_every_call(c) and len(kept) > 20
        assert as_read(readers.last_calls(c, before=second.as_of)) == kept  # the kept rows, read
        past = as_read(readers.last_calls(c, before=first.as_of))  # an older run: from the calls themselves
        assert past == from_every_call(c, before=first.as_of) != kept


def test_the_upgrade_keeps_the_newest_calls_of_a_store_that_had_none(make_sandbox, make_client, store):
    server = make_sandbox(numbers=150)
    sync(server, store, make_client)
    with store.begin() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0011")
    upgrade(store)
    with store.connect() as c:
        kept = dict(c.execute(select(number_last_call.c.number_id, number_last_call.c.started_at)).all())
        assert kept == from_every_call(c) and kept


def test_calls_stored_directly_keep_their_newest_too(make_sandbox, make_client, store):
    server = make_sandbox(numbers=80)
    sync(server, store, make_client)
    with store.begin() as c:
        c.execute(delete(number_last_call))
        rows = [dict(row._mapping) for row in c.execute(select(calls).limit(5))]
        c.execute(delete(calls).where(calls.c.call_id.in_([r["call_id"] for r in rows])))
        writer.insert_calls(c, rows)
    with store.connect() as c:
        kept = dict(c.execute(select(number_last_call.c.number_id, number_last_call.c.started_at)).all())
        assert kept == from_every_call(c) and kept
