"""Alerts to a webhook, against a real HTTP server on loopback: Slack-compatible, retried, redacted, once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reconcile.config import SANDBOX_API_KEY, Secret, load_settings
from reconcile.errors import DeliveryError, UpstreamError
from reconcile.jobs.nightly import run_nightly
from reconcile.jobs.runner import execute_job
from reconcile.progress import NullProgress
from reconcile.redaction import register_secrets
from reconcile.webhook import Webhook


class Hook:
    """A webhook endpoint: keeps each POST body; answers from `answers` in turn, then 200."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.answers: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length", 0))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook.paths.append(self.path)
                status = hook.answers.pop(0) if hook.answers else 200
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/sekret-token-123"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    endpoint = Hook()
    yield endpoint
    endpoint.close()


def test_a_post_is_slack_json_retried_after_429_and_redacted(hook):
    register_secrets(["tk_live_leaky"])
    hook.answers = [429]
    waits: list[float] = []
    Webhook(hook.url, sleep=waits.append).post("nightly failed: key tk_live_leaky refused")
    assert len(hook.bodies) == 2 and len(waits) == 1, "429: the server did not act, so once more"
    assert hook.bodies[-1] == {"text": "nightly failed: key *** refused"}
    assert hook.paths[-1] == "/services/T000/B000/sekret-token-123"


def test_a_500_to_a_post_is_not_retried_and_the_error_names_no_url(hook):
    hook.answers = [500]
    with pytest.raises(DeliveryError) as raised:
        Webhook(hook.url, sleep=lambda s: None).post("x")
    assert len(hook.bodies) == 1, "the hook may have posted it: a second copy is worse"
    assert "sekret-token-123" not in str(raised.value) and "127.0.0.1" not in str(raised.value)


def failing(settings, engine, clock):
    raise UpstreamError("Truedy refused the API key (401 unauthorized)")


def test_a_failed_slot_posts_one_alert_to_the_webhook(store, hook, tmp_path):
    base = load_settings(environ={"RECONCILE_WEBHOOK_URL": hook.url})
    settings = dataclasses.replace(base, mail=dataclasses.replace(base.mail, outbox_dir=tmp_path / "outbox"))
    assert settings.notify.webhook_url.reveal() == hook.url and "sekret" not in repr(settings)
    now = dt.datetime(2026, 11, 27, 2, 30, tzinfo=dt.UTC)
    for _ in range(2):
        with pytest.raises(UpstreamError):
            execute_job(settings, "nightly", "cron", clock=lambda: now, engine=store, jobs={"nightly": failing})
    (body,) = hook.bodies
    assert set(body) == {"text"}
    assert body["text"].startswith("reconcile: the nightly job failed (exit 3)\nTruedy refused the API key")
    assert "slot 2026-11-27T02:30" in body["text"]
    print(json.dumps(body))


def test_a_bad_webhook_url_is_a_config_error_that_shows_no_secret():
    from reconcile.errors import ConfigError

    with pytest.raises(ConfigError, match="environment RECONCILE_WEBHOOK_URL: notify.webhook_url must be") as raised:
        load_settings(environ={"RECONCILE_WEBHOOK_URL": "hooks.example/T0/secret-part"})
    assert "secret-part" not in str(raised.value)


def test_each_nightly_posts_its_headline_when_asked(make_sandbox, store, hook, tmp_path):
    server = make_sandbox(numbers=30)
    base = load_settings(environ={"RECONCILE_WEBHOOK_URL": hook.url})
    settings = dataclasses.replace(
        base, reports_dir=tmp_path / "reports",
        truedy=dataclasses.replace(base.truedy, base_url=server.url, api_key=Secret(SANDBOX_API_KEY)),
        notify=dataclasses.replace(base.notify, webhook_headlines=True))
    outcome = run_nightly(settings, store, lambda: server.account.now, progress=NullProgress())
    (body,) = hook.bodies
    assert body["text"] == f"reconcile nightly: {outcome.report_line()}"
    assert f"{outcome.summary.flagged:,} flagged" in body["text"]
