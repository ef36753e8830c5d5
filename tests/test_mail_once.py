"""Mail is delivered at most once per run and recipient: a real SMTP server on loopback, real kills."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from reconcile.config import load_settings
from reconcile.jobs.cleanup import run_cleanup
from reconcile.jobs.status import collect_status
from reconcile.store.schema import sent_digests
from tests import test_cleanup
from tests.test_cleanup import ROOT, Mailbox, free_port

synced = test_cleanup.synced  # the fixture: a store synced from the owners account


class HostileMailbox(Mailbox):
    """Accepts each message, then misbehaves: answers QUIT with 421, or kills the sender after DATA."""

    def __init__(self) -> None:
        super().__init__()
        self.quit_answer: str | None = None
        self.kill_after_data: tuple[int, int] | None = None  # (pid, signal) once, after storing the message

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        answer = await super().handle_DATA(server, session, envelope)
        if self.kill_after_data is not None:
            pid, signum = self.kill_after_data
            self.kill_after_data = None
            os.kill(pid, signum)  # the server has the message; the sender dies before it hears 250
            time.sleep(0.5)
        return answer

    async def handle_QUIT(self, server, session, envelope):  # noqa: N802
        return self.quit_answer or "221 Bye"


@pytest.fixture
def plain_smtp():
    mailbox = HostileMailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailbox.port = controller.port
    yield mailbox
    controller.stop()


def config_file(tmp_path, mailbox, cc=()):
    config = tmp_path / "mail.toml"
    config.write_text(
        "[mail]\n"
        f'smtp_host = "127.0.0.1"\nsmtp_port = {mailbox.port}\nsmtp_security = "none"\n'
        'smtp_max_attempts = 3\nsmtp_timeout_s = 5.0\nfrom_address = "reconcile@example.com"\n'
        "[notify]\n"
        'default_recipients = ["ops@example.com"]\nfinance_recipients = ["finance@example.com"]\n'
        f"cc = {list(cc)!r}\n".replace("'", '"'))
    return config


def settings_for(tmp_path, mailbox, **notify):
    settings = load_settings(environ={}, config_path=config_file(tmp_path, mailbox))
    return dataclasses.replace(settings, notify=dataclasses.replace(settings.notify, **notify))


def counts(mailbox) -> dict[str, int]:
    seen: dict[str, int] = {}
    for recipients, _ in mailbox.messages:
        for address in recipients:
            seen[address] = seen.get(address, 0) + 1
    return seen


def test_a_421_answer_to_quit_does_not_resend_what_was_accepted(synced, plain_smtp, tmp_path):
    plain_smtp.quit_answer = "421 4.3.2 Service shutting down"
    settings = settings_for(tmp_path, plain_smtp)
    first = run_cleanup(settings, engine=synced)
    assert not first.failed and len(first.sent) == 4
    assert set(counts(plain_smtp).values()) == {1}
    second = run_cleanup(settings, engine=synced)
    assert second.sent == {} and len(second.skipped) == 4
    assert set(counts(plain_smtp).values()) == {1}, "each digest was delivered exactly once"


def test_a_refused_owner_is_recorded_apart_from_the_cc_that_was_accepted(synced, plain_smtp, tmp_path):
    settings = settings_for(tmp_path, plain_smtp, cc=("audit@example.com",), finance_recipients=(),
                            default_recipients=())
    plain_smtp.refuse = {"ana@example.com"}
    first = run_cleanup(settings, engine=synced)
    assert set(first.failed) == {"ana@example.com"} and "550" in first.failed["ana@example.com"]
    assert counts(plain_smtp) == {"audit@example.com": 2, "ben@example.com": 1}
    with synced.connect() as c:
        rows = {r.recipient: (r.status, r.refused) for r in c.execute(select(sent_digests))}
    assert rows["ana@example.com"][0] == "refused" and "ana@example.com" in rows["ana@example.com"][1]
    assert rows["ben@example.com"][0] == "sent"
    plain_smtp.refuse = set()
    second = run_cleanup(settings, engine=synced)
    assert list(second.sent) == ["ana@example.com"] and second.skipped == ["ben@example.com"]
    assert counts(plain_smtp) == {"audit@example.com": 2, "ben@example.com": 1, "ana@example.com": 1}, \
        "only the refused address got the resend"


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_kill_right_after_the_server_accepted_never_leads_to_a_second_copy(synced, plain_smtp, tmp_path,
                                                                           database_url, signum):
    config = config_file(tmp_path, plain_smtp)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "TRUEDY_"))}
    env.update(RECONCILE_DATABASE_URL=database_url, RECONCILE_CONFIG=str(config))

    def cleanup(*extra):
        return subprocess.Popen([sys.executable, "-m", "reconcile.jobs.cli", "notify", "cleanup", *extra], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)

    killed = cleanup()
    plain_smtp.kill_after_data = (killed.pid, signum)
    killed.communicate(timeout=120)
    assert killed.returncode in (-9, 130), killed.returncode
    assert len(plain_smtp.messages) == 1
    (first_rcpts, _), = plain_smtp.messages
    victim = first_rcpts[0]

    rerun = cleanup()
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert counts(plain_smtp)[victim] == 1, "the accepted digest was not sent a second time"
    assert len(plain_smtp.messages) == 4, "every other digest went out"
    assert f"{victim}" in out and "fate unknown" in out
    settings = load_settings(environ={"RECONCILE_DATABASE_URL": database_url}, config_path=config)
    status = collect_status(settings, synced)
    assert [(e["recipient"], e["kind"]) for e in status["mail_of_unknown_fate"]] == [(victim, "cleanup")]

    resend = cleanup("--resend-unknown")
    out, err = resend.communicate(timeout=120)
    assert resend.returncode == 0, err
    assert counts(plain_smtp)[victim] == 2, "sent again only when the operator asks for it"
