"""Writing report files: each atomically (a temp file, then a rename), disk errors as ReportError."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reconcile.errors import ReportError


def atomic(path: Path, write: Callable[[Path], Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    try:
        write(temporary)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def report_folder(out_dir: Path, what: str) -> Iterator[Path]:
    """Make `out_dir`; an OSError inside becomes one clear ReportError (a full disk says so)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        yield out_dir
    except OSError as exc:
        hint = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise ReportError(f"cannot write the {what} to {out_dir}: {hint}; nothing was half-written") from None
