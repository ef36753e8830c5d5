"""Run the sandbox over real HTTP: in a background thread (tests, demo) or in front (CLI)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from reconcile.config import SANDBOX_API_KEY
from reconcile.sandbox.account import Account
from reconcile.sandbox.app import create_app


class SandboxServer:
    """`with SandboxServer(account) as server:` serves `account` at `server.url` on loopback."""

    def __init__(self, account: Account, api_key: str = SANDBOX_API_KEY, host: str = "127.0.0.1", port: int = 0) -> None:
        self.account = account
        self.api_key = api_key
        self.app = create_app(account, api_key)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False, loop="asyncio",
                                timeout_keep_alive=30, date_header=False)  # the app sends the account's Date
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True, name="sandbox")

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request made with the key, in order."""
        log: list[tuple[str, str]] = self.app.state.requests
        return log

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self) -> SandboxServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_forever(account: Account, host: str, port: int, api_key: str) -> None:
    uvicorn.run(create_app(account, api_key), host=host, port=port, log_level="info", lifespan="off",
                date_header=False)
