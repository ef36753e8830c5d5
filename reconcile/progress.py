"""Progress of long work: a live line on a terminal, plain log lines in cron."""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Protocol

log = logging.getLogger("reconcile")


class Progress(Protocol):
    def phase(self, name: str, total: int | None = None) -> None: ...
    def advance(self, count: int = 1) -> None: ...
    def finish(self) -> None: ...
    def abort(self) -> None: ...


class NullProgress:
    def phase(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        pass


class LogProgress:
    """One log line when a phase ends: what it was, how many, how long."""

    def __init__(self) -> None:
        self._name: str | None = None
        self._count = 0
        self._started = 0.0

    def phase(self, name: str, total: int | None = None) -> None:
        self.finish()
        self._name, self._count, self._started = name, 0, time.monotonic()

    def advance(self, count: int = 1) -> None:
        self._count += count

    def finish(self) -> None:
        if self._name is not None:
            log.info("%s: %d done in %.1f s", self._name, self._count, time.monotonic() - self._started)
            self._name = None

    def abort(self) -> None:
        """The work failed: end the phase without claiming it was done."""
        self._name = None


class TerminalProgress(LogProgress):
    """A line that updates in place, at most ten times a second."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        self.stream = stream
        self._total: int | None = None
        self._drawn = 0.0

    def phase(self, name: str, total: int | None = None) -> None:
        self.finish()
        self._name, self._count, self._total, self._started = name, 0, total, time.monotonic()
        self._draw(force=True)

    def advance(self, count: int = 1) -> None:
        self._count += count
        self._draw()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        of = f"/{self._total:,}" if self._total else ""
        self.stream.write(f"\r\x1b[2K{self._name}: {self._count:,}{of}  ({now - self._started:.0f} s)")
        self.stream.flush()

    def finish(self) -> None:
        if self._name is not None:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
            self._name = None

    def abort(self) -> None:
        if self._name is not None:
            self.stream.write("\n")
            self.stream.flush()
            self._name = None


_terminal = {"allowed": True}


def allow_terminal(allowed: bool) -> None:
    """Whether a progress line may be drawn on a terminal (not when the logs are JSON)."""
    _terminal["allowed"] = allowed


def progress_for(stream: IO[str] | None = None) -> Progress:
    stream = stream or sys.stderr
    return TerminalProgress(stream) if _terminal["allowed"] and stream.isatty() else LogProgress()
