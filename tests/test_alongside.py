"""Work alongside: a forked copy's value, its failures, and what leaving the block early does to it."""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from reconcile.alongside import alongside, why_not_fork
from reconcile.errors import ReportError


def test_the_copy_is_another_process_and_its_value_and_files_come_back(tmp_path: Path) -> None:
    def work() -> tuple[int, str]:
        (tmp_path / "written.csv").write_bytes(b"a,b\r\n1,2\r\n")
        return os.getpid(), "done"

    with alongside(work, "a test file", fork=True) as job:
        mine = os.getpid()
        pid, word = job.result()
    assert pid != mine and word == "done"
    assert (tmp_path / "written.csv").read_bytes() == b"a,b\r\n1,2\r\n"


def test_without_a_fork_the_work_runs_here_when_asked_and_not_at_all_after_a_failure() -> None:
    ran: list[int] = []
    with alongside(lambda: ran.append(os.getpid()) or 7, "a test", fork=False) as job:
        assert ran == []  # deferred: the same order of effects as the code before it
        assert job.result() == 7 and job.result() == 7
    assert ran == [os.getpid()]
    with pytest.raises(RuntimeError, match="the body failed"), alongside(lambda: ran.append(0), "a test", fork=False):
        raise RuntimeError("the body failed")
    assert ran == [os.getpid()]


def test_leaving_the_block_waits_for_the_copy_even_unasked(tmp_path: Path) -> None:
    def work() -> None:
        time.sleep(0.3)
        (tmp_path / "late").write_text("here")

    with alongside(work, "a test", fork=True):
        pass
    assert (tmp_path / "late").read_text() == "here"


def test_the_copys_exception_is_raised_here_with_its_traceback_as_a_note() -> None:
    def work() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as raised, alongside(work, "a test", fork=True):
        pass
    assert raised.value.errno == errno.ENOSPC
    assert any("in the forked copy" in note and "raise OSError" in note for note in raised.value.__notes__)


class Unpicklable(Exception):
    def __init__(self, code: int, detail: str) -> None:  # two arguments: pickle cannot rebuild it from args
        super().__init__(f"{code}: {detail}")


def test_an_exception_that_cannot_be_pickled_comes_back_as_text() -> None:
    def work() -> None:
        raise Unpicklable(3, "odd failure")

    with pytest.raises(RuntimeError, match="Unpicklable: 3: odd failure"), alongside(work, "a test", fork=True):
        pass


def test_a_copy_killed_by_a_signal_is_a_report_error_naming_the_work() -> None:
    def work() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(ReportError, match="the process writing the test files was killed by signal 9"), \
            alongside(work, "writing the test files", fork=True):
        pass


def test_a_failure_in_the_block_kills_the_copy_at_once(tmp_path: Path) -> None:
    marker = tmp_path / "pid"

    def work() -> None:
        marker.write_text(str(os.getpid()))
        time.sleep(60)
        (tmp_path / "never").write_text("written")

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), alongside(work, "a test", fork=True):
        while not marker.exists() or not marker.read_text():
            time.sleep(0.01)
        raise KeyboardInterrupt("signal 15")
    assert time.monotonic() - started < 30
    with pytest.raises(ProcessLookupError):
        os.kill(int(marker.read_text()), 0)  # killed and reaped: no such process
    assert not (tmp_path / "never").exists()


def test_it_forks_only_while_no_other_python_thread_runs() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait, args=(5,))
    thread.start()
    try:
        assert why_not_fork() is not None
        with alongside(os.getpid, "a test") as job:  # the default: no fork beside a thread
            assert job.result() == os.getpid()
    finally:
        release.set()
        thread.join(5)


def test_a_read_alongside_opens_its_own_connection_and_leaves_ours_as_it_was(store, monkeypatch) -> None:
    from sqlalchemy import text

    from reconcile import alongside as module
    from reconcile.store.database import read_alongside

    postgres = store.url.get_backend_name() == "postgresql"
    session = text("SELECT pg_backend_pid()") if postgres else text("SELECT 1")
    monkeypatch.setattr(module, "why_not_fork", lambda: None)
    with store.connect() as connection:
        ours = connection.execute(session).scalar()  # then back in the pool, to be handed out again below

    def read(connection):
        return os.getpid(), connection.execute(session).scalar(), connection.execute(
            text("SELECT count(*) FROM sync_runs")).scalar()

    with read_alongside(store, read, "a test read") as reading, store.connect() as connection:
        assert connection.execute(session).scalar() == ours  # ours, in use here while the copy reads
        pid, theirs, runs = reading.result()
    assert pid != os.getpid() and runs == 0
    if postgres:
        assert theirs != ours, "the copy had a session of its own"
    with store.connect() as connection:
        assert connection.execute(session).scalar() == ours, "our pooled connection survived the copy"


def test_it_forks_only_with_a_second_core_and_memory_for_a_copy_as_large_as_this_process(monkeypatch) -> None:
    from reconcile import alongside as module

    monkeypatch.setattr(threading, "active_count", lambda: 1)
    assert module.why_not_fork() is None
    monkeypatch.setattr(module, "available_bytes", lambda: module.resident_bytes() // 2)
    assert module.why_not_fork() is not None, "no memory to spare: the copy could push the machine into the OOM killer"
    monkeypatch.undo()
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert module.why_not_fork() is not None, "one core: a copy would only take turns with this process"


def test_a_cgroup_limit_caps_the_memory_available(tmp_path: Path, monkeypatch) -> None:
    from reconcile import alongside as module

    machine = module.available_bytes()
    v1_limit, v1_usage, v2_limit, v2_usage = (tmp_path / name for name in ("l1", "u1", "l2", "u2"))
    v1_limit.write_text(f"{1 << 30}\n")
    v1_usage.write_text(f"{(1 << 30) - (100 << 20)}\n")
    v2_limit.write_text("max\n")  # cgroup v2's "no limit"
    v2_usage.write_text("12345\n")
    monkeypatch.setattr(module, "_cgroup_memory_files", lambda: [(v2_limit, v2_usage), (v1_limit, v1_usage)])
    assert module.available_bytes() == min(machine, 100 << 20)
    v1_limit.write_text(f"{9223372036854771712}\n")  # cgroup v1's "no limit"
    assert module.available_bytes() >= min(machine, 100 << 20) and module.available_bytes() > 100 << 20


@pytest.mark.parametrize("fork", [True, False])
def test_asking_again_after_a_failure_raises_it_again_and_never_runs_the_work_twice(fork: bool, tmp_path: Path) -> None:
    runs = tmp_path / "runs"

    def work() -> None:
        with runs.open("a") as out:
            out.write("ran\n")
        raise ValueError("the work failed")

    with pytest.raises(ValueError, match="the work failed"), alongside(work, "a test", fork=fork) as job:
        for _ in range(2):
            with pytest.raises(ValueError, match="the work failed"):
                job.result()
    assert runs.read_text() == "ran\n"  # and leaving the block raised it a third time


def test_the_log_says_where_the_work_ran_and_why_not_in_a_copy(caplog, monkeypatch) -> None:
    import logging

    from reconcile import alongside as module

    caplog.set_level(logging.DEBUG, logger="reconcile.alongside")
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    with alongside(os.getpid, "the test files") as job:
        assert job.result() == os.getpid()
    assert "the test files: in this process, not a forked copy (one core)" in caplog.text
    monkeypatch.setattr(module, "available_bytes", lambda: 1 << 20)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert module.why_not_fork() == f"1 MB available for a copy of a {module.resident_bytes() >> 20} MB process"
    with alongside(os.getpid, "the test files", fork=True) as job:
        pid = job.result()
    assert f"the test files: in a forked copy (pid {pid})" in caplog.text


def test_frames_come_back_from_the_copy_a_column_at_a_time_as_they_were() -> None:
    """The copy pickles a frame column by column (`alongside.pickled`): every dtype, value, blank, index and
    column order comes back, nested in what the work returns; a frame it cannot split goes whole."""
    import datetime as dt
    import pickle
    from decimal import Decimal

    import pandas as pd

    from reconcile.alongside import pickled

    price = Decimal("1.15")
    frame = pd.DataFrame({
        "number_id": ["n2", None, "n1"],
        "label": pd.Series(["a", "b", None], dtype=object),
        "monthly_cost": [price, None, price],
        "purchased_at": pd.to_datetime(["2026-11-01T00:00:00Z", None, "2026-11-02T12:00:00.000001Z"], utc=True, format="ISO8601"),
        "managed": [True, False, True],
        "idle_days": [3, 0, 12],
    }, index=pd.Index([10, 20, 30], name="row"))
    twice = pd.DataFrame([[1, 2]], columns=["a", "a"])

    def check(back: pd.DataFrame, sent: pd.DataFrame) -> None:
        pd.testing.assert_frame_equal(back, sent, check_exact=True)
        assert list(back.dtypes.astype(str)) == list(sent.dtypes.astype(str))

    no_columns = pd.DataFrame(index=pd.Index(["x", "y"]))
    direct = pickle.loads(pickled({"inventory": frame, "empty": frame.iloc[0:0], "twice": twice, "bare": no_columns}))
    check(direct["bare"], no_columns)
    check(direct["inventory"], frame)
    check(direct["empty"], frame.iloc[0:0])
    check(direct["twice"], twice)
    assert direct["inventory"]["monthly_cost"].iloc[0] is direct["inventory"]["monthly_cost"].iloc[2], \
        "a column's shared amounts stay shared"
    with alongside(lambda: (frame, dt.date(2026, 11, 1), twice), "a test frame", fork=True) as job:
        forked, day, both = job.result()
    check(forked, frame)
    check(both, twice)
    assert day == dt.date(2026, 11, 1)
