"""Pieces every benchmark scenario shares: a sandbox in its own process, child-process runs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from reconcile.config import SANDBOX_API_KEY

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SandboxProcess:
    """`reconcile sandbox serve` in its own process, so that it does not share our GIL."""

    def __init__(self, numbers: int, calls: int, seed: int = 7, agents: int | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "reconcile.jobs.cli", "sandbox", "serve", "--port", str(self.port),
                "--seed", str(seed), "--numbers", str(numbers), "--calls", str(calls), "--rate-limit", "0"]
        if agents:
            args += ["--agents", str(agents)]
        self.process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 600
        while True:
            try:
                httpx.get(self.url + "/_sandbox/clock", headers=self.headers, timeout=2).raise_for_status()
                return
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start: " + self.process.stderr.read().decode()[-500:]) from None
                time.sleep(0.5)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {SANDBOX_API_KEY}"}

    def faults(self, **knobs: float) -> None:
        httpx.post(self.url + "/_sandbox/faults", json=knobs, headers=self.headers, timeout=10).raise_for_status()

    def advance(self, days: int = 1) -> None:
        httpx.post(self.url + "/_sandbox/advance", json={"days": days}, headers=self.headers, timeout=600).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def run_child(scenario: str, **params: Any) -> dict[str, Any]:
    """Run one scenario in a fresh interpreter; its figures come back as JSON on stdout."""
    env = dict(os.environ)
    result = subprocess.run(
        [sys.executable, "-m", "bench.scenarios", scenario, json.dumps(params)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{scenario} failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
