"""The sent-mail log: which digest went to whom for which run."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import Connection, func, insert, select

from reconcile.store.schema import sent_digests


def already_sent(connection: Connection, run_id: int, kind: str = "cleanup") -> set[str]:
    query = select(sent_digests.c.recipient).where(sent_digests.c.run_id == run_id, sent_digests.c.kind == kind)
    return set(connection.execute(query).scalars())


def sent_to(connection: Connection, kind: str) -> set[str]:
    """Everyone a message of `kind` went to, whatever the run (e.g. one review per month)."""
    return set(connection.execute(select(sent_digests.c.recipient).where(sent_digests.c.kind == kind)).scalars())


def previous_numbers(connection: Connection, before_run: int, kind: str = "cleanup") -> dict[str, set[str]]:
    """Per recipient, the numbers of their newest digest from an earlier run."""
    newest = (select(sent_digests.c.recipient, func.max(sent_digests.c.run_id).label("run_id"))
              .where(sent_digests.c.run_id < before_run, sent_digests.c.kind == kind)
              .group_by(sent_digests.c.recipient).subquery())
    query = select(sent_digests.c.recipient, sent_digests.c.number_ids).join(
        newest, (newest.c.recipient == sent_digests.c.recipient) & (newest.c.run_id == sent_digests.c.run_id)
    ).where(sent_digests.c.kind == kind)
    return {recipient: set(json.loads(ids)) for recipient, ids in connection.execute(query)}


def record_sent(connection: Connection, run_id: int, recipient: str, sent_at: dt.datetime, message_id: str,
                number_ids: list[str], kind: str = "cleanup") -> None:
    connection.execute(insert(sent_digests).values(
        run_id=run_id, recipient=recipient, kind=kind, sent_at=sent_at, message_id=message_id,
        numbers=len(number_ids), number_ids=json.dumps(sorted(number_ids))))
