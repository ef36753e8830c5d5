"""Work alongside: a forked copy of this process does one part of a job while this one goes on.

A report's files and reads are per-cell Python work, one core's worth; the machine the
job runs on has two or more. The nightly report writes its CSVs and workbook while the
summary and the page are made; the monthly review writes focus.csv while the invoices
are reconciled; reads pair up (`reconcile.store.database.read_alongside`). A fork hands
the copy every frame at no cost (the pages are shared until written); a thread would
not help (the work holds the GIL), and a fresh interpreter would have to import pandas
and be sent the frames.

The copy's value (or exception) comes back pickled through a pipe. It dies with this
process (Linux: PR_SET_PDEATHSIG), and is killed when the block is left by an exception.
It runs only our own formatting, file writing and reading (on a connection of its own),
then leaves by `os._exit`: no `atexit`, no buffered output written twice, no inherited
store connection used or closed under the parent.

It forks only where that is safe and worth it: on Linux, with no other Python thread
running (a thread could hold a lock the copy then needs; the scheduler runs jobs on a
worker thread, and tests run the sandbox on one), with a second core, and with memory
available (machine and cgroup) for a copy as large as this process. Elsewhere the work
runs in this process, in the same order of effects, so the outputs are the same bytes
either way.
"""

from __future__ import annotations

import ctypes
import io
import logging
import os
import pickle
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd

from reconcile.errors import ReportError

T = TypeVar("T")
log = logging.getLogger("reconcile.alongside")

_PR_SET_PDEATHSIG = 1


def why_not_fork() -> str | None:
    """Why a forked copy would not be safe or worth it here; None when it is: Linux, this the only
    Python thread, a second core to run it on, and memory to spare for a copy as large as this
    process (a copy shares its pages, but writes some: 137 MB beside a 275 MB report of 100,000
    numbers)."""
    if sys.platform != "linux" or not hasattr(os, "fork"):
        return "not Linux"
    if threading.active_count() != 1:
        return "other Python threads run"
    if usable_cores() < 2:
        return "one core"
    resident, available = resident_bytes(), available_bytes()
    if resident >= available:
        return f"{available >> 20} MB available for a copy of a {resident >> 20} MB process"
    return None


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform says)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resident_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def available_bytes() -> int:
    """The memory this process can still be given: the machine's MemAvailable, less under a cgroup's limit."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            available = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return 0
    for limit, usage in _cgroup_memory_files():
        try:
            cap = int(limit.read_text().strip())
            if cap < 1 << 60:  # larger is "no limit" (cgroup v1)
                available = min(available, cap - int(usage.read_text().strip()))
        except (OSError, ValueError):  # no such file, or v2's "max"
            continue
    return available


def _cgroup_memory_files() -> list[tuple[Path, Path]]:
    """(limit, usage) of this process's memory cgroup, for cgroup v2 and v1."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    files = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            base = Path("/sys/fs/cgroup") / path.lstrip("/")
            files.append((base / "memory.max", base / "memory.current"))
        elif "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            files.append((base / "memory.limit_in_bytes", base / "memory.usage_in_bytes"))
    return files


class Alongside(Generic[T]):
    """The work, started in a forked copy (or deferred to `result()` where forking is not safe)."""

    def __init__(self, work: Callable[[], T], what: str, fork: bool) -> None:
        self.work, self.what = work, what
        self.pid: int | None = None
        self.pipe: int | None = None
        self.done = False
        self.value: T | None = None
        self.error: BaseException | None = None  # the work's exception, raised by every `result()`
        if fork:
            self._start()

    def result(self) -> T:
        """The work's value, waiting for the copy; its exception raised here, as if the work had run here."""
        if not self.done:
            self.done = True
            try:
                self.value = self._collect() if self.pid is not None else self.work()
            except BaseException as exc:
                self.error = exc
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]

    def _start(self) -> None:
        read, write = os.pipe()
        parent = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        with warnings.catch_warnings():
            # Python 3.12+ warns when the process has OS threads; ours then are only native pools
            # (OpenBLAS's, which registers its own fork handlers): no Python thread runs (`why_not_fork`).
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the copy
            os.close(read)
            _run_copy(self.work, write, parent)
        os.close(write)
        self.pid, self.pipe = pid, read
        log.debug("%s: in a forked copy (pid %d)", self.what, pid)

    def _collect(self) -> T:
        assert self.pid is not None and self.pipe is not None
        chunks = []
        with os.fdopen(self.pipe, "rb") as pipe:
            self.pipe = None
            while chunk := pipe.read(1 << 20):
                chunks.append(chunk)
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        if not chunks:
            ended = (f"was killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                     else f"exited with status {os.waitstatus_to_exitcode(status)}")
            raise ReportError(f"the process {self.what} {ended} before it finished (out of memory?); "
                              "run the job again")
        ok, value = pickle.loads(b"".join(chunks))
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Kill the copy and reap it (the block was left by an exception)."""
        if self.pipe is not None:
            os.close(self.pipe)
            self.pipe = None
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = None


@contextmanager
def alongside(work: Callable[[], T], what: str, fork: bool | None = None) -> Iterator[Alongside[T]]:
    """Run `work` in a forked copy while the block runs; leaving the block waits for it.

    `what` says what the work does, for an error and the debug log ("writing the flagged and
    inventory files"). `fork`: None forks unless `why_not_fork()` gives a reason; False runs
    the work in this process, when the block asks for `result()` or leaves; True forks (tests).
    """
    if fork is None:
        refused = why_not_fork()
        fork = refused is None
        if refused:
            log.debug("%s: in this process, not a forked copy (%s)", what, refused)
    job = Alongside(work, what, fork)
    try:
        yield job
        job.result()
    finally:
        job.stop()


def _run_copy(work: Callable[[], Any], pipe: int, parent: int) -> None:
    """In the copy: do the work, send back (True, value) or (False, exception), and leave at once."""
    code = 1
    try:
        _die_with_parent(parent)
        for name in ("SIGTERM", "SIGINT"):
            signal.signal(getattr(signal, name), signal.SIG_DFL)  # not the job's handlers: just end
        try:
            payload = pickled((True, work()))
            code = 0
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            payload = _pickled_failure(exc)
        with os.fdopen(pipe, "wb") as out:
            out.write(payload)
    finally:
        os._exit(code)


def pickled(value: Any) -> bytes:
    """`value` pickled for the parent, its frames a column at a time (`_ColumnPickler`)."""
    buffer = io.BytesIO()
    _ColumnPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


class _ColumnPickler(pickle.Pickler):
    """Pickles a frame as its columns, each pickled apart (its own memo), and rebuilt by `_frame_of`.

    A whole frame's objects share one memo (an entry per object: 1.8 million for 137,836 invoice
    lines of 13 columns), whose growth made the hand-over from the copy twice as slow
    (0.25-0.27 s -> 0.13-0.16 s out, 0.13-0.16 s -> 0.11 s back in). Each column keeps its
    dtype and values; the frame its index and column order.
    """

    def reducer_override(self, obj: Any) -> Any:
        if (type(obj) is not pd.DataFrame or not len(obj.columns) or not obj.columns.is_unique
                or isinstance(obj.columns, pd.MultiIndex)):  # those go whole
            return NotImplemented
        names = list(obj.columns)
        columns = [pickle.dumps(obj[name].reset_index(drop=True), protocol=pickle.HIGHEST_PROTOCOL) for name in names]
        return _frame_of, (obj.index, names, columns)  # the index once, not with every column


def _frame_of(index: pd.Index, names: list[Any], columns: list[bytes]) -> pd.DataFrame:
    frame = pd.DataFrame({name: pickle.loads(column) for name, column in zip(names, columns, strict=True)},
                         columns=names)
    frame.index = index
    return frame


def _pickled_failure(exc: BaseException) -> bytes:
    exc.add_note("in the forked copy:\n" + "".join(traceback.format_tb(exc.__traceback__)))
    try:
        payload = pickle.dumps((False, exc))
        pickle.loads(payload)
        return payload
    except Exception:  # noqa: BLE001 - an exception that does not survive pickling goes back as text
        return pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


def _die_with_parent(parent: int) -> None:
    """Linux: the copy gets SIGKILL when its parent dies (kill -9), rather than write on alone."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (AttributeError, OSError):
        pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
