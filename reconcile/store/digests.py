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

from sqlalchemy import Connection, delete, func, insert, select, update

from reconcile.store.schema import sent_digests

SENDING, SENT, REFUSED = "sending", "sent", "refused"
_RANK = {REFUSED: 0, SENDING: 1, SENT: 2}


@dataclass(frozen=True)
class LogEntry:
    recipient: str
    status: str
    refused: dict[str, str]
    sent_at: dt.datetime


def entries(connection: Connection, run_id: int | None, kind: str) -> dict[str, LogEntry]:
    """recipient -> its log entry for `kind` (and `run_id`, unless None: e.g. one review per month)."""
    query = select(sent_digests.c.recipient, sent_digests.c.status, sent_digests.c.refused,
                   sent_digests.c.sent_at).where(sent_digests.c.kind == kind)
    if run_id is not None:
        query = query.where(sent_digests.c.run_id == run_id)
    found: dict[str, LogEntry] = {}
    for row in connection.execute(query.order_by(sent_digests.c.id)):
        entry = LogEntry(row.recipient, row.status, json.loads(row.refused or "{}"), row.sent_at)
        held = found.get(row.recipient)
        if held is None or _RANK[entry.status] >= _RANK[held.status]:  # across runs, the surest fate wins
            found[row.recipient] = entry
    return found


def already_sent(connection: Connection, run_id: int, kind: str = "cleanup") -> set[str]:
    return {r for r, e in entries(connection, run_id, kind).items() if e.status == SENT}


def sent_to(connection: Connection, kind: str) -> set[str]:
    """Everyone a message of `kind` was delivered to, whatever the run (e.g. one review per month)."""
    return {r for r, e in entries(connection, None, kind).items() if e.status == SENT}


def unknown_fates(connection: Connection, since: dt.datetime | None = None) -> list[LogEntry]:
    """Messages whose process died while the server had them: may have arrived, never resent on their own."""
    query = select(sent_digests.c.recipient, sent_digests.c.kind, sent_digests.c.sent_at,
                   sent_digests.c.run_id).where(sent_digests.c.status == SENDING)
    if since is not None:
        query = query.where(sent_digests.c.sent_at >= since)
    return [LogEntry(f"{row.recipient} ({row.kind}, run {row.run_id})", SENDING, {}, row.sent_at)
            for row in connection.execute(query.order_by(sent_digests.c.sent_at))]


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
    where = ((sent_digests.c.run_id == run_id) & (sent_digests.c.recipient == recipient)
             & (sent_digests.c.kind == kind))
    if connection.execute(update(sent_digests).where(where).values(**values)).rowcount == 0:
        connection.execute(insert(sent_digests).values(run_id=run_id, recipient=recipient, kind=kind, **values))


def record_outcome(connection: Connection, run_id: int, recipient: str, kind: str,
                   refused: dict[str, str] | None) -> None:
    """After the server answered: `sent`, or `refused` with what it refused."""
    where = ((sent_digests.c.run_id == run_id) & (sent_digests.c.recipient == recipient)
             & (sent_digests.c.kind == kind))
    connection.execute(update(sent_digests).where(where).values(
        status=REFUSED if refused else SENT, refused=json.dumps(refused, sort_keys=True) if refused else None))


def forget_attempt(connection: Connection, run_id: int, recipient: str, kind: str) -> None:
    """The server certainly did not take the message: as if it had never been tried."""
    connection.execute(delete(sent_digests).where(
        (sent_digests.c.run_id == run_id) & (sent_digests.c.recipient == recipient) & (sent_digests.c.kind == kind)
        & (sent_digests.c.status == SENDING)))


def record_sent(connection: Connection, run_id: int, recipient: str, sent_at: dt.datetime, message_id: str,
                number_ids: list[str], kind: str = "cleanup") -> None:
    """Log a message as delivered in one step (tests and tools that send no real mail)."""
    record_attempt(connection, run_id, recipient, sent_at, message_id, number_ids, kind)
    record_outcome(connection, run_id, recipient, kind, None)
