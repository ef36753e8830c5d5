"""Opening the store: engine, SQLite pragmas, migrations and the schema-version check."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from reconcile.alongside import Alongside, alongside
from reconcile.errors import StoreError
from reconcile.redaction import clip, redact

T = TypeVar("T")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def open_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL, foreign keys and a busy timeout."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            # how long a writer waits for the file's lock: 30 s, or the URL's own `?timeout=SECONDS`
            engine = create_engine(parsed, connect_args={} if "timeout" in parsed.query else {"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.port is not None and not 0 < parsed.port < 65536:
            raise ValueError(f"port {parsed.port} is out of range")
        return create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, ValueError, TypeError) as exc:  # a bad port is a ValueError from the URL parser
        raise StoreError(f"not a usable database URL ({clip(str(exc), 120)}): {redact(url)}; "
                         "check RECONCILE_DATABASE_URL or store.database_url") from None
    except OSError as exc:
        raise StoreError(f"cannot create the folder of the SQLite file {redact(url)}: {exc.strerror}") from None


def read_alongside(engine: Engine, read: Callable[[Connection], T], what: str) -> AbstractContextManager[Alongside[T]]:
    """`read(connection)` in a forked copy while the block goes on (see `reconcile.alongside`).

    The copy never touches the connections it inherited (they are this process's: a
    PostgreSQL session or a SQLite file handle in use here); it opens its own and closes
    it before it leaves. An in-memory SQLite store exists only in this process: read here.
    """
    parent = os.getpid()

    def work() -> T:
        copy = os.getpid() != parent
        if copy:
            engine.dispose(close=False)  # forget the inherited pool without closing this process's connections
        try:
            with engine.connect() as connection:
                return read(connection)
        finally:
            if copy:
                engine.dispose()

    return alongside(work, what, fork=False if in_memory(engine) else None)


def in_memory(engine: Engine) -> bool:
    """An in-memory SQLite store: one connection's own, seen by no other thread or process."""
    return engine.url.get_backend_name() == "sqlite" and engine.url.database in (None, "", ":memory:")


@contextmanager
def write_beside(engine: Engine, write: Callable[[Connection], None], what: str) -> Iterator[None]:
    """`write(connection)` in a transaction of its own on a thread, while the block goes on; leaving the block
    waits for it (and raises its error).

    For writes that wait on the database, not on Python (an aggregate query, then a few rows): the
    database works while the block holds the GIL. The block must not read what `write` writes. An
    in-memory SQLite store is one connection's own (another thread would see another database): there
    it is written here, before the block.
    """
    def work() -> None:
        with engine.begin() as connection:
            write(connection)

    if in_memory(engine):
        work()
        yield
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=what) as pool:
        done = pool.submit(work)
        try:
            yield
        finally:
            error = done.exception()
        if error is not None:
            raise error


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    """The migration scripts, read once per process (every command checks the schema at start)."""
    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    if head is None:
        raise RuntimeError("the package holds no schema migrations: reinstall reconcile")
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in _scripts().walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    """The store's schema revision (None when it has none); StoreError when it cannot be read."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise unusable(engine, exc) from None


def unusable(engine: Engine, exc: BaseException) -> StoreError:
    """The one line for a store that cannot be opened or read (unreachable, corrupt, locked, read-only)."""
    return StoreError(f"cannot use the database at {redact(engine.url.render_as_string())}: {first_line(exc)}; "
                      "check RECONCILE_DATABASE_URL (a SQLite file may be damaged or not a database)")


def _refuse_newer(engine: Engine, current: str | None) -> None:
    if current is not None and current not in known_revisions():
        raise StoreError(f"the database schema is at {current}, which this reconcile does not know: "
                         "the store was upgraded by a newer reconcile; install that version (or newer) to use it")


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply every pending migration; (revision before, revision after)."""
    before = current_revision(engine)
    _refuse_newer(engine, before)
    try:
        with engine.begin() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise unusable(engine, exc) from None
    return before, head_revision()


def check_schema(engine: Engine) -> None:
    """Raise StoreError saying what to do when the schema is missing, behind or ahead."""
    current = current_revision(engine)
    head = head_revision()
    if current is None:
        raise StoreError("the database has no schema yet: run `reconcile db upgrade` first")
    _refuse_newer(engine, current)
    if current != head:
        raise StoreError(f"the database schema is at {current}, this version needs {head}: run `reconcile db upgrade`")


def database_error(exc: BaseException, doing: str) -> StoreError:
    """The one StoreError (exit 4) for a database fault while `doing` something: the driver's first line."""
    return StoreError(f"database error while {doing}: {first_line(exc)}; check the database "
                      "(RECONCILE_DATABASE_URL; a read-only file, a full disk, a lock held by another program)")


def first_line(exc: BaseException) -> str:
    """The driver's own first line for a database error (SQLAlchemy wraps it with SQL and links)."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return clip(lines[0] if lines else type(exc).__name__, 200)
