"""`reconcile doctor`: is this install able to run its jobs? One line per check, a clear verdict.

Each check does the least that proves its part works: the database answers and is at this
version's schema; the Truedy API accepts the key (one small request); the mail server
answers and accepts the login (no message is sent), or the outbox is writable; the
reports folder is writable; the scheduler's heartbeat is fresh, if a scheduler runs. The
command exits with the code of the first failure (2 configuration, 3 upstream, 4
database, 7 a stopped scheduler), 0 when all pass.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from reconcile.clock import system_clock
from reconcile.config import Settings
from reconcile.errors import ConfigError, ReconcileError
from reconcile.health import scheduler_verdict
from reconcile.jobs.runtime import make_client
from reconcile.mail import transport_for
from reconcile.redaction import redact
from reconcile.store import heartbeats
from reconcile.store.database import check_schema, current_revision, database_error, open_engine


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    exit_code: int = 0

    def line(self) -> str:
        return f"{'ok  ' if self.passed else 'FAIL'}  {self.name:<9} {self.detail}"


def run_checks(settings: Settings, now: dt.datetime | None = None) -> list[Check]:
    """Every check, in order; the scheduler's is skipped when the database does not pass."""
    try:
        engine = open_engine(settings.database_url)
    except (ReconcileError, SQLAlchemyError) as exc:
        return [_config(settings), _failed("database", exc), *_outside(settings)]
    try:
        database = _probe("database", lambda: _database(settings, engine))
        checks = [_config(settings), database, *_outside(settings)]
        if database.passed:
            checks.append(_scheduler(engine, now or system_clock()))
        return checks
    finally:
        engine.dispose()


def _outside(settings: Settings) -> list[Check]:
    """The checks of what lies outside the store: the API, the mail server, the reports folder."""
    return [_probe("api", lambda: _api(settings)), _probe("mail", lambda: transport_for(settings.mail).check()),
            _probe("reports", lambda: _writable(settings))]


def _probe(name: str, check: Callable[[], str]) -> Check:
    try:
        return Check(name, True, check())
    except (ReconcileError, SQLAlchemyError) as exc:
        return _failed(name, exc)


def _failed(name: str, exc: BaseException) -> Check:
    error = database_error(exc, "checking the database") if isinstance(exc, SQLAlchemyError) else exc
    code = error.exit_code if isinstance(error, ReconcileError) else 1
    return Check(name, False, str(error), code)


def _config(settings: Settings) -> Check:
    return Check("config", True, "read from " + " over ".join(reversed(settings.sources)))


def _database(settings: Settings, engine: Engine) -> str:
    check_schema(engine)
    return f"{redact(settings.database_url)} answers, schema {current_revision(engine)} (this version's)"


def _api(settings: Settings) -> str:
    quick = dataclasses.replace(settings, truedy=dataclasses.replace(settings.truedy, max_attempts=2))
    with make_client(quick) as client:
        client.get("agents", {"page": 1, "page_size": 1})
    return f"{settings.truedy.base_url} accepts the key"


def _writable(settings: Settings) -> str:
    folder = settings.reports_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".reconcile-doctor"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"the reports folder {folder} is not writable ({exc.strerror}): "
                          "fix its owner or set RECONCILE_REPORTS_DIR") from None
    return f"{folder} is writable"


def _scheduler(engine: Engine, now: dt.datetime) -> Check:
    try:
        seen = heartbeats.last_seen(engine, heartbeats.SCHEDULER)
    except SQLAlchemyError as exc:
        return _failed("scheduler", exc)
    verdict = scheduler_verdict(seen[0] if seen else None, now)
    detail = verdict.detail if verdict.state != "not used" else "not running (fine when cron or timers run the jobs)"
    return Check("scheduler", verdict.exit_code == 0, detail, verdict.exit_code)
