"""One run at a time per database, and a killed holder never leaves the lock stuck.

PostgreSQL: a session advisory lock keyed by the schema, held on its own connection;
the server drops it when that connection dies. SQLite: an exclusive `flock` on a file
beside the database; the kernel drops it when the process dies.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from reconcile.errors import LockedError, StoreError
from reconcile.store.database import in_memory, unusable

LOCK_KEY_SQL = "hashtext('reconcile:' || current_schema())"


class RunLock:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Any = None
        self._file: IO[str] | None = None

    def acquire(self) -> RunLock:
        try:
            return self._acquire()
        except SQLAlchemyError as exc:
            raise unusable(self.engine, exc) from None
        except OSError as exc:
            raise StoreError(f"cannot take the run lock {_lock_path(self.engine)}: {exc.strerror}; "
                             "the folder of the database must be writable") from None

    def _acquire(self) -> RunLock:
        if self.engine.dialect.name == "postgresql":
            connection = self.engine.connect()
            got = connection.execute(text(f"SELECT pg_try_advisory_lock({LOCK_KEY_SQL})")).scalar()
            connection.commit()
            if not got:
                connection.close()
                raise self._held()
            self._connection = connection
        else:
            path = _lock_path(self.engine)
            handle = path.open("a+")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise self._held() from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self._file = handle
        return self

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(text(f"SELECT pg_advisory_unlock({LOCK_KEY_SQL})"))
                self._connection.commit()
            finally:
                self._connection.close()
                self._connection = None
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def _held(self) -> LockedError:
        return LockedError("another reconcile run holds the lock on this database; "
                           "let it finish (see `reconcile status`) and run again")

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _lock_path(engine: Engine) -> Path:
    database = engine.url.database
    if in_memory(engine) or not database:
        return Path(f"/tmp/reconcile-memory-{os.getpid()}.lock")
    if database.startswith("file:"):  # a SQLite URI (file:/path/store.db?mode=ro): the lock is beside the file
        database = database.removeprefix("file:").split("?", 1)[0]
    return Path(database + ".lock")
