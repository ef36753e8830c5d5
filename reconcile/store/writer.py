"""Writes to the store: run rows, version plans, calls, state and data issues."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

import numpy as np
from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Table,
    bindparam,
    func,
    insert,
    null,
    select,
    update,
)

from reconcile.redaction import safe_line
from reconcile.store.schema import calls, data_issues, sync_runs, sync_state
from reconcile.store.snapshot import OpenVersion, VersionPlan
from reconcile.store.types import Money, UTCDateTime, new_id
from reconcile.truedy.records import DataIssue

CALLS_COVERED_FROM = "calls_covered_from"  # sync_state: every call started since then is in the store
CHUNK = 900  # ids per IN (...) clause, under every engine's parameter limit


def abandon_stale_runs(engine: Engine, now: dt.datetime) -> int:
    """Runs still marked running were killed (we hold the lock): mark them abandoned."""
    with engine.begin() as connection:
        result = connection.execute(
            update(sync_runs).where(sync_runs.c.status == "running")
            .values(status="abandoned", finished_at=now, error="the process ended before the run committed")
        )
        return result.rowcount or 0


def newest_complete_as_of(engine: Engine) -> dt.datetime | None:
    """When the newest complete sync run was dated (None in an empty store)."""
    with engine.connect() as connection:
        return connection.execute(select(func.max(sync_runs.c.as_of, type_=UTCDateTime))
                                  .where(sync_runs.c.status == "complete")).scalar()


def raw_cursor(connection: Connection) -> Any:
    """A DB-API cursor on the connection's own transaction, for the few bulk paths that skip SQLAlchemy."""
    dbapi = connection.connection.dbapi_connection
    if dbapi is None:
        raise RuntimeError("the database connection is closed")
    return dbapi.cursor()


def begin_run(engine: Engine, as_of: dt.datetime, started_at: dt.datetime) -> int:
    with engine.begin() as connection:
        result = connection.execute(insert(sync_runs).values(started_at=started_at, as_of=as_of, status="running"))
        return new_id(result.inserted_primary_key)


def finish_run(connection: Connection, run_id: int, finished_at: dt.datetime, counts: dict[str, Any]) -> None:
    connection.execute(
        update(sync_runs).where(sync_runs.c.id == run_id)
        .values(status="complete", finished_at=finished_at, counts=json.dumps(counts, sort_keys=True))
    )


def fail_run(engine: Engine, run_id: int, finished_at: dt.datetime, error: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(sync_runs).where(sync_runs.c.id == run_id)
            .values(status="failed", finished_at=finished_at, error=safe_line(error, 1000))
        )


def open_versions(connection: Connection, table: Table, key: str) -> dict[str, OpenVersion]:
    """key -> its open version, for every open version of `table`."""
    source = table.c.source_hash if "source_hash" in table.c else null()
    query = (select(table.c[key], table.c.version_id, table.c.row_hash, table.c.status, source)
             .where(table.c.valid_to_run.is_(None)))
    # plain columns and no parameters: read straight from the driver (100,000 rows, every night)
    cursor = raw_cursor(connection)
    try:
        cursor.execute(str(query.compile(dialect=connection.dialect)))
        return {row[0]: OpenVersion(row[1], row[2], row[3], row[4]) for row in cursor.fetchall()}
    finally:
        cursor.close()


def set_source_hashes(connection: Connection, table: Table, hashes: Sequence[tuple[int, str]]) -> None:
    """Record what an unchanged version's record now looks like upstream (e.g. a field was added)."""
    if hashes:
        connection.execute(update(table).where(table.c.version_id == bindparam("vid"))
                           .values(source_hash=bindparam("hash")), [{"vid": v, "hash": h} for v, h in hashes])


def apply_plan(connection: Connection, table: Table, plan: VersionPlan, run_id: int) -> None:
    for start in range(0, len(plan.to_close), CHUNK):
        chunk = plan.to_close[start:start + CHUNK]
        connection.execute(update(table).where(table.c.version_id.in_(chunk)).values(valid_to_run=run_id))
    if plan.to_open:
        bulk_insert(connection, table, ({**row, "valid_from_run": run_id, "valid_to_run": None} for row in plan.to_open))


def sqlite_utc_text(value: dt.datetime | None) -> str | None:
    """What SQLAlchemy writes for a UTCDateTime on SQLite, built 2.5x faster (a test holds them equal).

    The calls of a first sync carry 1.5 million of these.
    """
    if value is None:
        return None
    u = value.astimezone(dt.UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031 - the fastest form here
        u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond)


def sqlite_utc_texts(values: Iterable[dt.datetime | None]) -> list[str | None]:
    """`sqlite_utc_text` over a whole column (a test holds them equal): each time's microseconds since
    the epoch by C-speed maps, formatted by numpy (a page of 500 calls: 0.6 ms -> 0.3 ms a column).
    A naive time, which `astimezone` takes as local, sends the column the per-value way."""
    column = list(values)
    if not all(value is None or value.tzinfo is not None for value in column):
        return [sqlite_utc_text(value) for value in column]
    present = column if None not in column else [value for value in column if value is not None]
    since = map(operator.sub, cast(list[dt.datetime], present), itertools.repeat(_EPOCH))
    micros = np.fromiter(map(operator.floordiv, since, itertools.repeat(_MICROSECOND)), np.int64, len(present))
    texts = [text.replace("T", " ", 1) for text in micros.astype("datetime64[us]").astype("U26").tolist()]
    if present is column:
        return cast(list[str | None], texts)
    formatted = iter(texts)
    return [None if value is None else next(formatted) for value in column]


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def _converter(column_type: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """SQLAlchemy's own bind processing for a column (money to nanos, UTC to the engine's form), as a function."""
    if isinstance(column_type, UTCDateTime) and dialect.name == "sqlite":
        return sqlite_utc_text
    processor: Callable[[Any], Any] | None = column_type.dialect_impl(dialect).bind_processor(dialect)
    if processor is not None and isinstance(column_type, Money):  # prices repeat: convert each amount once
        made: dict[Any, Any] = {}
        convert = processor

        def processor(value: Any) -> Any:
            if type(value) is not Decimal:  # None, or a wrong type the type itself refuses
                return convert(value)
            bound = made.get(value)
            if bound is None:
                bound = made[value] = convert(value)
            return bound
    return processor


def _insert_columns(table: Table) -> list[str]:
    """Every column of `table` but an autoincrement key, in table order."""
    return [c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)]


class Binder:
    """Rows of `table` as the engine's driver takes them (money as nanos, UTC in the engine's form), in
    `_insert_columns` order. Pure conversion: a sync binds calls while it downloads, and inserts at the commit."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        names = _insert_columns(table)
        self.names = names
        self._fetch = operator.itemgetter(*names)  # one C call per row when the row has every column
        self._convert = [(i, c) for i, c in enumerate(_converter(table.c[name].type, dialect) for name in names)
                         if c is not None]

    def columns(self, columns: Sequence[Iterable[Any]]) -> list[tuple[Any, ...]]:
        """Rows given a column at a time (one iterable per name in `names`, equally long) bound as
        `__call__` binds them: each column converted whole, the rows made by `zip` at C speed."""
        converted: list[Iterable[Any]] = list(columns)
        for i, c in self._convert:
            converted[i] = sqlite_utc_texts(converted[i]) if c is sqlite_utc_text else map(c, converted[i])
        return list(zip(*converted, strict=True))

    def __call__(self, rows: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
        tuples = []
        fetch, convert, names = self._fetch, self._convert, self.names
        for row in rows:
            try:
                values = list(fetch(row))
            except KeyError:  # a column the row leaves out is NULL
                values = [row.get(name) for name in names]
            for i, c in convert:
                values[i] = c(values[i])
            tuples.append(values)
        return tuples


def bulk_insert(connection: Connection, table: Table, rows: Iterable[Mapping[str, Any]], chunk: int = 10_000) -> None:
    """Insert rows in this transaction by the engine's fastest path (COPY on PostgreSQL).

    Every column of `table` but an autoincrement key (NULL where a row has no value);
    rows are converted a chunk at a time, so 100,000 rows never exist as tuples at once.
    """
    bind = Binder(table, connection.dialect)
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, chunk)):
        insert_bound(connection, table.name, bind.names, bind(batch))


def insert_bound(connection: Connection, table: str, names: Sequence[str], tuples: Sequence[Sequence[Any]]) -> None:
    """Insert rows already bound by a `Binder` (its `names`, in order) into `table`, in this transaction."""
    cursor = raw_cursor(connection)
    try:
        if connection.dialect.name == "postgresql":
            with cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                for item in tuples:
                    copy.write_row(item)
        else:
            marks = ", ".join("?" for _ in names)
            cursor.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})",  # noqa: S608
                               tuples)
    finally:
        cursor.close()


def insert_calls(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Calls straight into `calls` (a sync stages its own: `reconcile.store.staging`), newest per number kept."""
    bulk_insert(connection, calls, rows)
    keep_newest_calls(connection, "calls")


def keep_newest_calls(connection: Connection, source: str) -> None:
    """Each number's newest call in table `source` into `number_last_call`, where it is newer than the one kept.

    Every way into `calls` goes through here, so the nightly review can read a row per
    number instead of every call (see `reconcile.store.readers.last_calls`).
    """
    connection.exec_driver_sql(
        f"INSERT INTO number_last_call (number_id, started_at) SELECT number_id, max(started_at) "  # noqa: S608
        f"FROM {source} WHERE number_id IS NOT NULL GROUP BY number_id "
        "ON CONFLICT (number_id) DO UPDATE SET started_at = excluded.started_at "
        "WHERE excluded.started_at > number_last_call.started_at")


def record_issues(connection: Connection, run_id: int, issues: Iterable[DataIssue]) -> int:
    rows = [
        {"sync_run_id": run_id, "record_type": i.record_type, "record_id": i.record_id[:100],
         "field": i.field[:100], "reason": i.reason[:500]}
        for i in issues
    ]
    if rows:
        connection.execute(insert(data_issues), rows)
    return len(rows)


def get_state(connection: Connection, key: str) -> str | None:
    return connection.execute(select(sync_state.c.value).where(sync_state.c.key == key)).scalar()


def set_state(connection: Connection, key: str, value: str, run_id: int) -> None:
    if connection.execute(update(sync_state).where(sync_state.c.key == key)
                          .values(value=value, sync_run_id=run_id)).rowcount == 0:
        connection.execute(insert(sync_state).values(key=key, value=value, sync_run_id=run_id))
