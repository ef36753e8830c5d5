"""The sent-mail log: which message went to whom for which run, and what became of it.

A row is written (`sending`) before the message is handed to the server and updated
after (`sent`, or `refused` with the addresses refused). A row left `sending` means the
process died in between: the message may have arrived, so it is reported, never resent
on its own.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, insert, select, update

from reconcile.store.schema import sent_digests

SENDING, SENT, REFUSED = "sending", "sent", "refused"
_RANK = {REFUSED: 0, SENDING: 1, SENT: 2}


@dataclass(frozen=True)
class LogEntry:
    run_id: int
    recipient: str
    kind: str
    status: str
    refused: dict[str, str]   # address -> the server's answer
    sent_at: dt.datetime


def _entry(row: Any) -> LogEntry:
    return LogEntry(row.run_id, row.recipient, row.kind, row.status, json.loads(row.refused or "{}"), row.sent_at)


_COLUMNS = (sent_digests.c.run_id, sent_digests.c.recipient, sent_digests.c.kind, sent_digests.c.status,
            sent_digests.c.refused, sent_digests.c.sent_at)


def entries(connection: Connection, run_id: int | None, kind: str) -> dict[str, LogEntry]:
    """recipient -> its log entry for `kind` (and `run_id`, unless None: e.g. one review per month)."""
    query = select(*_COLUMNS).where(sent_digests.c.kind == kind)
    if run_id is not None:
        query = query.where(sent_digests.c.run_id == run_id)
    found: dict[str, LogEntry] = {}
    for entry in map(_entry, connection.execute(query.order_by(sent_digests.c.id))):
        held = found.get(entry.recipient)
        if held is None or _RANK[entry.status] >= _RANK[held.status]:  # across runs, the surest fate wins
            found[entry.recipient] = entry
    return found


def unknown_fates(connection: Connection) -> list[LogEntry]:
    """Messages whose process died while the server had them: may have arrived, never resent on their own."""
    query = select(*_COLUMNS).where(sent_digests.c.status == SENDING).order_by(sent_digests.c.sent_at)
    return [_entry(row) for row in connection.execute(query)]


def _one(run_id: int, recipient: str, kind: str) -> ColumnElement[bool]:
    return (sent_digests.c.run_id == run_id) & (sent_digests.c.recipient == recipient) & (sent_digests.c.kind == kind)


def previous_numbers(connection: Connection, before_run: int, kind: str = "cleanup") -> dict[str, set[str]]:
    """Per recipient, the numbers of their newest digest from an earlier run."""
    newest = (select(sent_digests.c.recipient, func.max(sent_digests.c.run_id).label("run_id"))
              .where(sent_digests.c.run_id < before_run, sent_digests.c.kind == kind)
              .group_by(sent_digests.c.recipient).subquery())
    query = select(sent_digests.c.recipient, sent_digests.c.number_ids).join(
        newest, (newest.c.recipient == sent_digests.c.recipient) & (newest.c.run_id == sent_digests.c.run_id)
    ).where(sent_digests.c.kind == kind)
    return {recipient: set(json.loads(ids)) for recipient, ids in connection.execute(query)}


def record_attempt(connection: Connection, run_id: int, recipient: str, sent_at: dt.datetime, message_id: str,
                   number_ids: list[str], kind: str = "cleanup") -> None:
    """Log the message as `sending` before the server has it (an earlier refused row is reused)."""
    values = {"sent_at": sent_at, "message_id": message_id, "numbers": len(number_ids),
              "number_ids": json.dumps(sorted(number_ids)), "status": SENDING}
    if connection.execute(update(sent_digests).where(_one(run_id, recipient, kind)).values(**values)).rowcount == 0:
        connection.execute(insert(sent_digests).values(run_id=run_id, recipient=recipient, kind=kind, **values))


def record_outcome(connection: Connection, run_id: int, recipient: str, kind: str,
                   refused: dict[str, str] | None) -> None:
    """After the server answered: `sent`, or `refused` with what it refused."""
    connection.execute(update(sent_digests).where(_one(run_id, recipient, kind)).values(
        status=REFUSED if refused else SENT, refused=json.dumps(refused, sort_keys=True) if refused else None))


def forget_attempt(connection: Connection, run_id: int, recipient: str, kind: str) -> None:
    """The server certainly did not take the message: as if it had never been tried."""
    connection.execute(delete(sent_digests).where(_one(run_id, recipient, kind) & (sent_digests.c.status == SENDING)))


def record_sent(connection: Connection, run_id: int, recipient: str, sent_at: dt.datetime, message_id: str,
                number_ids: list[str], kind: str = "cleanup") -> None:
    """Log a message as delivered in one step (tests and tools that send no real mail)."""
    record_attempt(connection, run_id, recipient, sent_at, message_id, number_ids, kind)
    record_outcome(connection, run_id, recipient, kind, None)
