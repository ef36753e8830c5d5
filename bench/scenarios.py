"""Single measured runs, each in its own process: `python -m bench.scenarios NAME PARAMS_JSON`.

Each prints one JSON object: wall time, peak RSS of this process, and its counts.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

from reconcile.config import SANDBOX_API_KEY
from reconcile.truedy import RetryPolicy, TruedyClient, make_http_client

SCENARIOS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def scenario(function: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    SCENARIOS[function.__name__] = function
    return function


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def client_for(params: dict[str, Any]) -> TruedyClient:
    http = make_http_client(params["url"], SANDBOX_API_KEY, max_concurrency=params.get("concurrency", 8))
    return TruedyClient(http, policy=RetryPolicy(), max_concurrency=params.get("concurrency", 8))


@scenario
def list_numbers(params: dict[str, Any]) -> dict[str, Any]:
    """The client's complete listing of active and pending numbers."""
    with client_for(params) as client:
        started = time.perf_counter()
        listing = client.list_numbers()
        wall = time.perf_counter() - started
        return {"wall_s": round(wall, 2), "records": len(listing.records), "requests": client.stats.requests,
                "http_429": client.stats.by_status[429], "passes": listing.passes, "peak_rss_mb": peak_rss_mb()}


if __name__ == "__main__":
    name, raw = sys.argv[1], sys.argv[2]
    print(json.dumps(SCENARIOS[name](json.loads(raw))))
