"""Calls a sync has downloaded, waiting for its commit in a temporary table of its own connection.

The table is private to one database session and vanishes with it: a failed or killed
run leaves nothing behind, and no other session sees a row of it. Writing there takes
no lock on the store (SQLite keeps temporary tables in a file of their own), so the
calls go in while the next pages download; the commit then moves them into `calls`
with one INSERT ... SELECT inside the database, not row by row from Python.

On a SQLite file the commit's sorts (the calls in key order, each index rebuilt) get helper
threads on the cores the download has left idle (`PRAGMA threads`), and the session is
closed when the staging ends, not kept: its temporary file goes whole, where dropping
the table frees it page by page (3 million calls at 400,000 numbers, two cores: the sorts
10.6-11.6 s -> 7.0-8.0 s with one helper, the drop 2.3 s -> nothing).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError

from reconcile.alongside import usable_cores
from reconcile.store.database import in_memory
from reconcile.store.schema import calls
from reconcile.store.writer import Binder, insert_bound, keep_newest_calls
from reconcile.truedy.records import Call

STAGING = "calls_staging"


class CallStaging:
    """`with CallStaging(connection) as staging:` add calls while downloading (`add_calls`), `commit_into_calls` in the final
    transaction. The connection must stay checked out from first add to commit (the table is its own)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.bind = Binder(calls, connection.dialect)
        self._qualified = ("temp." if connection.dialect.name == "sqlite" else "pg_temp.") + STAGING
        # closed at the end, not pooled: a SQLite file's session (a store in memory is its session)
        self._closes = connection.dialect.name == "sqlite" and not in_memory(connection.engine)

    def __enter__(self) -> CallStaging:
        names = ", ".join(self.bind.names)
        no_rows = "WHERE 0 = 1" if self.connection.dialect.name == "sqlite" else "WITH NO DATA"
        self.connection.exec_driver_sql(f"DROP TABLE IF EXISTS {self._qualified}")  # a pooled session's leftover
        self.connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {STAGING} AS SELECT {names} FROM calls {no_rows}")  # noqa: S608 - our names
        self.connection.commit()
        return self

    def add_calls(self, records: Sequence[Call], run_id: int) -> None:
        """Call records of run `run_id` to the staging table (committed: no lock held), bound a column
        at a time: a record's fields are the table's columns in order, the run id last."""
        if records:
            columns = [*zip(*records, strict=True), itertools.repeat(run_id, len(records))]
            insert_bound(self.connection, STAGING, self.bind.names, self.bind.columns(columns))
            self.connection.commit()

    def commit_into_calls(self) -> int:
        """Move every staged call not in `calls` yet into it, in the caller's transaction; the number moved.

        A call read twice (the overlap an incremental sync re-reads, or a page served twice) is
        one row: the database skips an id it holds (ON CONFLICT on the key), so no set of every
        call id is held in memory (3 million ids at 400,000 numbers).

        Into an empty `calls` (a first sync) the secondary indexes are dropped and built
        again after the insert: one sort each instead of a B-tree insert per row; on
        PostgreSQL the primary key as well (SQLite cannot drop it).
        `number_last_call` takes each number's newest call of the batch, when it is newer.
        """
        names = ", ".join(self.bind.names)
        if self._closes:  # this session ends with the staging (see __exit__)
            self.connection.exec_driver_sql(f"PRAGMA threads = {sort_helpers()}")
        empty = self.connection.execute(select(calls.c.call_id).limit(1)).first() is None
        rebuilt = sorted(calls.indexes, key=lambda index: str(index.name)) if empty else []
        for index in rebuilt:
            index.drop(self.connection)
        key = self._primary_key() if empty and self.connection.dialect.name == "postgresql" else None
        if key:  # the key too is built after the rows, by one sort: 755,000 calls 3.9 s -> 2.1 s
            self.connection.exec_driver_sql(f'ALTER TABLE calls DROP CONSTRAINT "{key}"')
            moved = self.connection.exec_driver_sql(  # a call staged twice is one row, as ON CONFLICT made it
                f"INSERT INTO calls ({names}) SELECT DISTINCT ON (call_id) {names} FROM {STAGING} "  # noqa: S608
                "ORDER BY call_id").rowcount
            self.connection.exec_driver_sql(f'ALTER TABLE calls ADD CONSTRAINT "{key}" PRIMARY KEY (call_id)')
        else:
            moved = self.connection.exec_driver_sql(
                f"INSERT INTO calls ({names}) SELECT {names} FROM {STAGING} WHERE 1 = 1 ORDER BY call_id "  # noqa: S608
                "ON CONFLICT (call_id) DO NOTHING").rowcount
        for index in rebuilt:
            index.create(self.connection)
        # into an empty `calls`, its new index on number and start holds each number's newest call in order
        keep_newest_calls(self.connection, "calls" if empty else STAGING)
        return int(moved)

    def _primary_key(self) -> str | None:
        """The name of the primary key of `calls` on PostgreSQL (as the migrations named it)."""
        return self.connection.exec_driver_sql(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'calls'::regclass AND contype = 'p'").scalar()

    def __exit__(self, *exc_info: object) -> None:
        if self._closes:
            self.connection.invalidate()  # closed, not pooled: its temporary file (and its PRAGMA threads) with it
            return
        try:
            self.connection.rollback()
            self.connection.exec_driver_sql(f"DROP TABLE IF EXISTS {self._qualified}")
            self.connection.commit()
        except SQLAlchemyError:
            pass  # the table goes with the session anyway; a pooled session drops it on its next use


def sort_helpers() -> int:
    """The helper threads SQLite may sort with: one per core beside this one's, at most three."""
    return max(0, min(usable_cores() - 1, 3))
