"""A sync in a child process that kills itself (SIGKILL) at a chosen point.

python -m tests.kill_helper DATABASE_URL BASE_URL AS_OF PHASE AFTER
"""

from __future__ import annotations

import os
import signal
import sys

from reconcile.clock import parse_timestamp
from reconcile.config import SANDBOX_API_KEY
from reconcile.progress import NullProgress
from reconcile.store.database import open_engine
from reconcile.sync import SyncOptions, run_sync
from reconcile.truedy import TruedyClient, make_http_client


class KillAt(NullProgress):
    def __init__(self, phase: str, after: int) -> None:
        self.target, self.after, self.current, self.count = phase, after, "", 0

    def phase(self, name: str, total: int | None = None) -> None:
        self.current, self.count = name, 0
        self._maybe_die()

    def advance(self, count: int = 1) -> None:
        self.count += count
        self._maybe_die()

    def _maybe_die(self) -> None:
        if self.current == self.target and self.count >= self.after:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    url, base_url, as_of, phase, after = sys.argv[1:6]
    engine = open_engine(url)
    client = TruedyClient(make_http_client(base_url, SANDBOX_API_KEY), calls_page_size=100)
    when = parse_timestamp(as_of)
    run_sync(client, engine, clock=lambda: when, options=SyncOptions(call_slices=2), progress=KillAt(phase, int(after)))
    print("completed")
