"""The collector's thresholds inside and after bulk work."""

from __future__ import annotations

import gc
import threading

import pytest

from reconcile.bulk import BULK_THRESHOLDS, bulk_work


def test_bulk_work_raises_the_thresholds_and_puts_them_back() -> None:
    before = gc.get_threshold()
    with bulk_work():
        assert gc.get_threshold() == BULK_THRESHOLDS
        with bulk_work():  # nested: still bulk
            assert gc.get_threshold() == BULK_THRESHOLDS
        assert gc.get_threshold() == BULK_THRESHOLDS  # the inner block leaving does not end the outer one
    assert gc.get_threshold() == before


def test_bulk_work_puts_them_back_after_a_failure_and_as_a_decorator() -> None:
    before = gc.get_threshold()

    @bulk_work()
    def job() -> None:
        assert gc.get_threshold() == BULK_THRESHOLDS
        raise RuntimeError("the job failed")

    with pytest.raises(RuntimeError):
        job()
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError):
        job()  # the decorator works on every call, not once
    assert gc.get_threshold() == before


def test_overlapping_blocks_in_threads_share_one_setting() -> None:
    before = gc.get_threshold()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with bulk_work():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    with bulk_work():
        thread.start()
        assert inside.wait(5)
    assert gc.get_threshold() == BULK_THRESHOLDS  # the other thread is still inside
    release.set()
    thread.join(5)
    assert gc.get_threshold() == before
