"""`make bench`: run the scale scenarios and print one table (also JSON under var/bench/)."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from bench.harness import ROOT, SandboxProcess, run_child


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--numbers", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=1_000_000)
    args = parser.parse_args()
    rows = []
    sandbox = SandboxProcess(args.numbers, args.calls)
    try:
        for latency_ms in (0, 20):
            sandbox.faults(latency_s=latency_ms / 1000, rate_limit=0)
            result = run_child("list_numbers", url=sandbox.url)
            rows.append({"scenario": f"list_numbers latency={latency_ms}ms", **result})
            print(rows[-1], flush=True)
    finally:
        sandbox.stop()
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(rows, indent=2))
    print(f"written {path}")


if __name__ == "__main__":
    main()
