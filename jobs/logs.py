"""Logging for people and for machines, with secrets scrubbed from every line.

In JSON, every line is one object: the time, level, logger and message, plus the
structured fields of the job it belongs to (job, run_id, slot, trigger) and those a line
adds (phase, status, exit_code, duration_s, counts). The runner sets the job's fields for
the length of a run (`job_fields`); any log call may add its own with `extra=`.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from reconcile.progress import allow_terminal
from reconcile.redaction import printable, redact, register_secrets

__all__ = ["job_fields", "json_line", "redact", "register_secrets", "setup_logging"]

FIELDS = ("event", "job", "run_id", "slot", "trigger", "phase", "status", "exit_code", "duration_s", "counts")
QUIET = ("httpx", "httpcore", "uvicorn.access", "alembic", "apscheduler")  # their INFO is not ours
_job: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("reconcile_job_fields",
                                                                        default=MappingProxyType({}))


@contextlib.contextmanager
def job_fields(**fields: Any) -> Iterator[None]:
    """Every log line inside carries these fields (in JSON)."""
    token = _job.set({**_job.get(), **fields})
    try:
        yield
    finally:
        _job.reset(token)


class _JobFields(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _job.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def _message(record: logging.LogRecord) -> str:
    """The record's message, redacted, on one line (upstream text may carry line breaks)."""
    return printable(redact(record.getMessage()))


class _RedactingFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = _message(record)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _message(record),
        }
        entry.update({name: getattr(record, name) for name in FIELDS if getattr(record, name, None) is not None})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


def json_line(message: str, logger: str = "reconcile", level: int = logging.INFO, **fields: Any) -> str:
    """One JSON log line outside logging (a command's final summary on stdout, or its failure)."""
    record = logging.LogRecord(logger, level, "", 0, message, None, None)
    for name, value in {**_job.get(), **fields}.items():
        setattr(record, name, value)
    return _JsonFormatter().format(record)


def setup_logging(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(_JobFields())
    allow_terminal(fmt == "text")  # a progress line in place is for people; JSON stays JSON
    logging.captureWarnings(True)  # a library's warning is a log line too (JSON in JSON)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
