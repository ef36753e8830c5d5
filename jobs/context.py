"""What every command shares: the settings loaded once, its output (text or JSON), its one failure line."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from reconcile.config import Settings, load_settings
from reconcile.errors import ReconcileError
from reconcile.jobs.logs import json_line, redact, register_secrets, setup_logging
from reconcile.redaction import safe_line


class Context:
    """Settings loaded once per invocation, lazily, so `--help` never needs a valid config."""

    def __init__(self, config_path: str | None, log_format: str | None, config_flag: str = "--config") -> None:
        self.config_path = config_path
        self.config_flag = config_flag  # where the path came from: the flag or RECONCILE_CONFIG
        self.log_format = log_format
        self._settings: Settings | None = None

    @property
    def json(self) -> bool:
        """Whether output is JSON lines (--log-format json, or logging.format once the settings are read)."""
        chosen = self.log_format or (self._settings.log_format if self._settings else "text")
        return chosen == "json"

    def say(self, line: str, **fields: Any) -> None:
        """A command's result on stdout: the line for people, or one JSON line with its fields."""
        click.echo(json_line(line, event="summary", **fields) if self.json else line)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            settings = load_settings(config_path=self.config_path, config_flag=self.config_flag)
            register_secrets([settings.truedy.api_key.reveal(), settings.mail.smtp_password.reveal(),
                              settings.notify.webhook_url.reveal()])
            setup_logging(self.log_format or settings.log_format, settings.log_level)
            self._settings = settings
        return self._settings


def fail_cleanly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command; a ReconcileError becomes one line and its exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ReconcileError as exc:
            fail(safe_line(str(exc)), exc.exit_code)
        except SQLAlchemyError as exc:  # a database fault no layer below classified: still exit 4, one line
            from reconcile.store.database import database_error

            error = database_error(exc, f"running `{click.get_current_context().command_path}`")
            fail(str(error), error.exit_code)
        except KeyboardInterrupt:
            fail("interrupted; nothing was committed by the unfinished step", 130)
        except Exception as exc:  # the last resort: one line, no traceback, no secret
            click.echo(
                f"reconcile: unexpected error ({type(exc).__name__}: {safe_line(str(exc), 300)}); "
                "rerun with RECONCILE_DEBUG=1 for a traceback and report it",
                err=True,
            )
            import os

            if os.environ.get("RECONCILE_DEBUG"):
                import traceback

                click.echo(redact(traceback.format_exc()), err=True)
            sys.exit(1)

    return wrapper


def fail(message: str, code: int) -> None:
    """The one line a failure prints on stderr (a JSON line when the output is JSON), then the exit code."""
    context = click.get_current_context(silent=True)
    obj = context.find_object(Context) if context else None
    if obj is not None and obj.json:
        click.echo(json_line(f"reconcile: {message}", level=logging.ERROR, exit_code=code), err=True)
    else:
        click.echo(f"reconcile: {message}", err=True)
    sys.exit(code)


def clock_for(as_of: str | None) -> Callable[[], Any]:
    import datetime as dt

    from reconcile.clock import parse_as_of, system_clock
    from reconcile.errors import ConfigError

    if as_of is None:
        return system_clock
    try:
        fixed: dt.datetime = parse_as_of(as_of)
    except ValueError as exc:
        raise ConfigError(f"--as-of: {exc}") from None
    return lambda: fixed
