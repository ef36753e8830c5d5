"""Several producers run in threads, their items merged through one bounded queue."""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

Item = TypeVar("Item")
_DONE = object()


def merge_parallel(producers: list[Callable[[], Iterator[Item]]], workers: int) -> Iterator[Item]:
    """Items of several producers run in threads, through one bounded queue."""
    items: queue.Queue[Any] = queue.Queue(maxsize=workers * 2)
    stop = threading.Event()

    def run(producer: Callable[[], Iterator[Item]]) -> None:
        try:
            for item in producer():
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            items.put(_Failure(exc))
        finally:
            items.put(_DONE)

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(run, p), daemon=True, name="truedy-calls")
               for p in producers]
    for thread in threads:
        thread.start()
    finished = 0
    try:
        while finished < len(threads):
            item = items.get()
            if item is _DONE:
                finished += 1
            elif isinstance(item, _Failure):
                raise item.exc
            else:
                yield item
    finally:
        stop.set()
        while any(thread.is_alive() for thread in threads):
            try:
                items.get(timeout=0.05)
            except queue.Empty:
                pass


@dataclass
class _Failure:
    exc: BaseException
