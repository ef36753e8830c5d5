"""Opening the store: engine, SQLite pragmas, migrations and the schema-version check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from reconcile.config import redact_url
from reconcile.errors import StoreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def open_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL, foreign keys and a busy timeout."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"not a database URL: {redact_url(url)}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply every pending migration; (revision before, revision after)."""
    try:
        before = current_revision(engine)
        with engine.begin() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return before, head_revision()
    except OperationalError as exc:
        raise StoreError(f"cannot reach the database at {redact_url(str(engine.url))}: {first_line(exc)}") from None


def check_schema(engine: Engine) -> None:
    """Raise StoreError saying what to run when the schema is missing or behind."""
    try:
        current = current_revision(engine)
    except OperationalError as exc:
        raise StoreError(
            f"cannot reach the database at {redact_url(str(engine.url))}: {first_line(exc)}; "
            "check RECONCILE_DATABASE_URL"
        ) from None
    head = head_revision()
    if current is None:
        raise StoreError("the database has no schema yet: run `reconcile db upgrade` first")
    if current != head:
        raise StoreError(f"the database schema is at {current}, this version needs {head}: run `reconcile db upgrade`")


def first_line(exc: BaseException) -> str:
    """The driver's own first line for a database error (SQLAlchemy wraps it with SQL and links)."""
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
