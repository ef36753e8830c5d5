"""What the client's reads return: listings with their data issues, call pages, request counts."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from reconcile.truedy.records import Call, DataIssue


class Identified(Protocol):
    """A parsed record: each has its API id."""

    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=Identified)


@dataclass
class Listing(Generic[T]):
    """A complete listing: its records (unique by id), the records we refused, how it went."""

    records: list[T]
    issues: list[DataIssue]
    passes: int = 1
    drift: bool = False
    duplicates: int = 0
    unchanged: set[str] = field(default_factory=set)                 # ids whose raw record matched `known`
    fingerprints: dict[str, str] = field(default_factory=dict)       # id -> fingerprint of each parsed record


@dataclass
class CallPage:
    calls: list[Call]
    issues: list[DataIssue]


@dataclass
class RequestStats:
    requests: int = 0
    retries: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, status: int | None, retry: bool) -> None:
        with self._lock:
            self.requests += 1
            if status is not None:
                self.by_status[status] += 1
            if retry:
                self.retries += 1
