"""Cleanup digests against a real SMTP server on loopback (aiosmtpd in the test process)."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import os
import re
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import func, select

from reconcile.config import SANDBOX_API_KEY, load_settings
from reconcile.jobs.cleanup import run_cleanup
from reconcile.store.schema import sent_digests
from reconcile.sync import SyncOptions, run_sync
from tests.scenario import load_account

ROOT = Path(__file__).resolve().parent.parent
OWNERS = ROOT / "tests" / "accounts" / "owners"


class Mailbox:
    """An SMTP handler that keeps what it accepts and refuses the addresses it is told to."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for rcpts, m in self.messages if address in rcpts]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def tls(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server_context, ca_file


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"reconcile" and auth_data.password == b"s3cret-pass"
    return AuthResult(success=ok, handled=False)  # aiosmtpd sends the 235 or 535 itself


@pytest.fixture
def smtp(tls):
    """A STARTTLS-only SMTP server with a login, on a loopback port."""
    server_context, ca_file = tls
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), tls_context=server_context,
                            require_starttls=True, authenticator=authenticate, auth_required=True)
    controller.start()
    mailbox.port, mailbox.ca_file = controller.port, ca_file
    yield mailbox
    controller.stop()


def mail_settings(tmp_path, mailbox, **changes):
    config = tmp_path / "mail.toml"
    config.write_text(
        "[mail]\n"
        f'smtp_host = "127.0.0.1"\nsmtp_port = {mailbox.port}\nsmtp_security = "starttls"\n'
        f'smtp_username = "reconcile"\nsmtp_ca_file = "{mailbox.ca_file}"\nsmtp_max_attempts = 2\nsmtp_timeout_s = 5.0\n'
        'from_address = "Number reconciliation <reconcile@example.com>"\n'
        "[notify]\n"
        'default_recipients = ["ops@example.com"]\nfinance_recipients = ["finance@example.com"]\n')
    settings = load_settings(environ={"RECONCILE_SMTP_PASSWORD": "s3cret-pass"}, config_path=config)
    notify = dataclasses.replace(settings.notify, **changes)
    return dataclasses.replace(settings, notify=notify)


@pytest.fixture
def synced(make_sandbox, make_client, store):
    account = load_account(OWNERS)
    server = make_sandbox(account=account)
    run_sync(make_client(server), store, clock=lambda: account.now, options=SyncOptions(call_slices=1))
    return store


def csv_ids(message) -> set[str]:
    import csv
    import io

    attachment = next(message.iter_attachments())
    return {row["number_id"] for row in csv.DictReader(io.StringIO(attachment.get_content(), newline=""))}


def test_routing_by_owner_default_list_and_finance(synced, smtp, tmp_path):
    outcome = run_cleanup(mail_settings(tmp_path, smtp), engine=synced)
    assert not outcome.failed
    assert sorted(outcome.sent) == ["ana@example.com", "ben@example.com", "finance@example.com", "ops@example.com"]
    assert csv_ids(smtp.to("ana@example.com")[0]) == {"num_ana_1", "num_shared"}
    assert csv_ids(smtp.to("ben@example.com")[0]) == {"num_shared", "num_ben_1"}
    assert csv_ids(smtp.to("ops@example.com")[0]) == {"num_orphan_owner", "num_nobody", "num_evil_owner"}
    assert csv_ids(smtp.to("finance@example.com")[0]) == {
        "num_ana_1", "num_shared", "num_ben_1", "num_orphan_owner", "num_nobody", "num_evil_owner"}
    assert outcome.bad_owner_values == 1
    assert len(smtp.messages) == 4, "a recipient with nothing flagged (the busy number's owner) gets nothing more"


def test_parts_and_attachment_parse_back(synced, smtp, tmp_path):
    run_cleanup(mail_settings(tmp_path, smtp), engine=synced)
    message = smtp.to("ben@example.com")[0]
    assert message["Subject"] == "2 Truedy phone numbers cost 1.20 GBP, 1.15 USD a month and do nothing"
    assert message["From"] == "Number reconciliation <reconcile@example.com>"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "+442071230303" in text and "1.20 GBP" in text and "Assigned but idle" in text
    assert '<span style="color:#6b7280;">Line' in html, "customer text stays in the body, as text"
    attachment = next(message.iter_attachments())
    assert attachment.get_content_type() == "text/csv" and attachment.get_filename() == "flagged-numbers-2026-11-20.csv"
    header = attachment.get_content().splitlines()[0]
    assert header.startswith("number_id,phone_number,label,country_code,")


def test_no_header_injection_from_labels_agent_names_or_metadata(synced, smtp, tmp_path):
    run_cleanup(mail_settings(tmp_path, smtp), engine=synced)
    for recipients, message in smtp.messages:
        assert "evil@example.com" not in recipients and all("mallory" not in r for r in recipients)
        assert message["Bcc"] is None
        raw_headers = message.as_string().split("\n\n", 1)[0]
        assert "evil" not in raw_headers and "HYPERLINK" not in raw_headers
    ops_csv = next(smtp.to("ops@example.com")[0].iter_attachments()).get_content()
    assert "'=HYPERLINK" in ops_csv


def test_a_digest_is_sent_once_per_run_and_recipient_even_when_retried(synced, smtp, tmp_path):
    settings = mail_settings(tmp_path, smtp)
    smtp.refuse = {"ben@example.com"}
    first = run_cleanup(settings, engine=synced)
    assert set(first.failed) == {"ben@example.com"} and "550" in first.failed["ben@example.com"]
    assert sorted(first.sent) == ["ana@example.com", "finance@example.com", "ops@example.com"]
    smtp.refuse = set()
    second = run_cleanup(settings, engine=synced)
    assert list(second.sent) == ["ben@example.com"]
    assert sorted(second.skipped) == ["ana@example.com", "finance@example.com", "ops@example.com"]
    third = run_cleanup(settings, engine=synced)
    assert third.sent == {} and len(third.skipped) == 4
    for address in ("ana@example.com", "ben@example.com", "finance@example.com", "ops@example.com"):
        assert len(smtp.to(address)) == 1
    with synced.connect() as c:
        assert c.execute(select(func.count()).select_from(sent_digests)).scalar() == 4


def test_cc_bcc_go_to_the_envelope_and_bcc_never_to_a_header(synced, smtp, tmp_path):
    settings = mail_settings(tmp_path, smtp, cc=("audit@example.com",), bcc=("archive@example.com",),
                             finance_recipients=(), default_recipients=())
    run_cleanup(settings, engine=synced)
    assert {tuple(sorted(r)) for r, _ in smtp.messages} == {
        ("ana@example.com", "archive@example.com", "audit@example.com"),
        ("archive@example.com", "audit@example.com", "ben@example.com")}
    for _, message in smtp.messages:
        assert message["Cc"] == "audit@example.com" and message["Bcc"] is None


def test_a_wrong_smtp_password_is_a_clear_error_without_the_password(synced, smtp, tmp_path):
    settings = mail_settings(tmp_path, smtp)
    wrong = dataclasses.replace(settings.mail, smtp_password=type(settings.mail.smtp_password)("not-the-pass"))
    outcome = run_cleanup(dataclasses.replace(settings, mail=wrong), engine=synced)
    assert set(outcome.failed) == {"ana@example.com", "ben@example.com", "finance@example.com", "ops@example.com"}
    message = outcome.failed["ana@example.com"]
    assert "refused the login" in message and "not-the-pass" not in message
    assert smtp.messages == []


def test_an_untrusted_certificate_is_refused(synced, smtp, tmp_path):
    settings = mail_settings(tmp_path, smtp)
    untrusted = dataclasses.replace(settings.mail, smtp_ca_file="")
    outcome = run_cleanup(dataclasses.replace(settings, mail=untrusted), engine=synced)
    assert "certificate" in outcome.failed["ana@example.com"] and smtp.messages == []


def test_without_smtp_digests_go_to_the_outbox(synced, tmp_path):
    settings = load_settings(environ={})
    settings = dataclasses.replace(
        settings, mail=dataclasses.replace(settings.mail, outbox_dir=tmp_path / "outbox"),
        notify=dataclasses.replace(settings.notify, default_recipients=("ops@example.com",)))
    outcome = run_cleanup(settings, engine=synced)
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == len(outcome.sent) == 3
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed.get_body(("plain",)) is not None and next(parsed.iter_attachments()).get_filename()


def test_dry_run_sends_and_records_nothing(make_sandbox, smtp, store, database_url, tmp_path):
    account = load_account(OWNERS)
    server = make_sandbox(account=account)
    config = tmp_path / "mail.toml"
    config.write_text(f'[mail]\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp.port}\nsmtp_ca_file = "{smtp.ca_file}"\n'
                      '[notify]\ndefault_recipients = ["ops@example.com"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "TRUEDY_"))}
    env.update(RECONCILE_DATABASE_URL=database_url, TRUEDY_BASE_URL=server.url, TRUEDY_API_KEY=SANDBOX_API_KEY,
               RECONCILE_CONFIG=str(config))
    run = subprocess.run([sys.executable, "-m", "reconcile.jobs.cli", "sync", "--as-of", "2026-11-20T02:30:00Z"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    dry = subprocess.run([sys.executable, "-m", "reconcile.jobs.cli", "notify", "cleanup", "--dry-run"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "ana@example.com (owner): 2 numbers, 2 new" in dry.stdout and "would send" in dry.stdout
    assert smtp.messages == []
    with store.connect() as c:
        assert c.execute(select(func.count()).select_from(sent_digests)).scalar() == 0


def test_a_deferred_recipient_is_retried_through_the_one_retry_policy(smtp, tmp_path, caplog):
    """451 once, then accepted: one jittered wait (full jitter under the policy's first ceiling), logged
    with its attempt count; the message arrives once."""
    import datetime
    import logging
    import random

    from reconcile.mail import SmtpTransport, build_message

    deferred = {"left": 1}
    accept = Mailbox.handle_RCPT

    async def defer_once(self, server, session, envelope, address, rcpt_options):
        if deferred["left"]:
            deferred["left"] -= 1
            return "451 4.7.1 try again later"
        return await accept(self, server, session, envelope, address, rcpt_options)

    smtp.handle_RCPT = defer_once.__get__(smtp)
    settings = mail_settings(tmp_path, smtp)
    waits: list[float] = []
    transport = SmtpTransport(settings.mail, sleep=waits.append, rng=random.Random(3))
    message = build_message(sender=settings.mail.from_address, to=["ops@example.com"], subject="retry", text="t",
                            html="<p>t</p>", message_id="<retry@example.com>",
                            date=datetime.datetime(2026, 11, 27, tzinfo=datetime.UTC))
    with caplog.at_level(logging.WARNING, logger="reconcile.mail"):
        handed = transport.send(message, ["ops@example.com"])
    assert handed.refused == {} and len(smtp.to("ops@example.com")) == 1
    assert len(waits) == 1 and 0 <= waits[0] <= transport.policy.backoff_base_s
    assert waits[0] == random.Random(3).uniform(0, transport.policy.backoff_base_s), "the policy's full jitter"
    assert "(attempt 1 of 2); retrying in" in caplog.text


def test_flagged_numbers_that_reach_nobody_are_named_everywhere(synced, smtp, tmp_path):
    """No default recipient: the numbers without an owner are named in the dry run, the run's output,
    the nightly page and status, with the setting that fixes it; never a silent success."""
    from reconcile.jobs.nightly import report_nightly
    from reconcile.jobs.status import collect_status, format_status

    base = mail_settings(tmp_path, smtp, default_recipients=())
    settings = dataclasses.replace(base, reports_dir=tmp_path / "reports")
    dry = run_cleanup(settings, synced, dry_run=True)
    assert dry.unrouted and all(phone.startswith("+") for phone in dry.unrouted)
    warning = next(line for line in dry.lines() if "reach nobody" in line)
    assert warning.startswith(f"{len(dry.unrouted)} flagged number(s) reach nobody ({dry.unrouted[0]}")
    assert "notify.default_recipients" in warning
    owners_only = {n for d in dry.digests if "owner" in d.roles for n in d.rows["phone_number"]}
    assert not owners_only & set(dry.unrouted), "an owned number is routed"
    outcome = report_nightly(settings, synced, out_dir=tmp_path / "night")
    assert sorted(outcome.summary.unrouted) == sorted(dry.unrouted)
    assert "reach nobody" in outcome.line() and outcome.counts()["unrouted"] == len(dry.unrouted)
    page = (tmp_path / "night" / "nightly.html").read_text(encoding="utf-8")
    assert 'id="unrouted"' in page and dry.unrouted[0] in page and "notify.default_recipients" in page
    report = collect_status(settings, synced)
    assert report["unrouted_flagged"]["count"] == len(dry.unrouted)
    assert "reach nobody" in format_status(report)
    routed = mail_settings(tmp_path, smtp)  # with a default recipient, nothing is unrouted
    assert run_cleanup(routed, synced, dry_run=True).unrouted == []



def test_digest_wording_for_people(synced, smtp, tmp_path):
    """The reason once per group, dates a person reads, an unknown cost said in words, whom to ask (and
    Reply-To), and wording for the list the recipient is on."""
    settings = mail_settings(tmp_path, smtp, contact="telephony-lead@example.com")
    run_cleanup(settings, engine=synced)
    ben = smtp.to("ben@example.com")[0]
    assert ben["Reply-To"] == "telephony-lead@example.com"
    text = ben.get_body(("plain",)).get_content()
    assert "numbers that you are responsible for" in text and "telephony-lead@example.com" in text
    assert re.search(r"flagged since \d{1,2} [A-Z][a-z]{2} 2026, (\d+ days?|today)", text)
    assert not re.search(r"\d{4}-\d{2}-\d{2}T", text), "no raw ISO timestamps"
    finance = smtp.to("finance@example.com")[0].get_body(("plain",)).get_content()
    assert "in the whole account (you are on the finance list)" in finance
    assert "you are responsible for" not in finance
    for why in ("No AI agent uses these numbers", "An active agent has these numbers"):
        assert finance.count(why) <= 1, "the reason once per group"


def test_an_unknown_cost_is_said_in_words(make_sandbox, make_client, store, smtp, tmp_path):
    """Imported numbers without a configured carrier cost: "unknown (billed by the carrier)", never "?"."""
    from reconcile.reports.digest import render_digest

    server = make_sandbox(numbers=150)
    run_sync(make_client(server), store, clock=lambda: server.account.now, options=SyncOptions(call_slices=1))
    settings = mail_settings(tmp_path, smtp)
    digest = next(d for d in run_cleanup(settings, store, dry_run=True).digests if "finance" in d.roles)
    assert digest.unknown_savings > 0, "the account has imported numbers of unknown cost"
    text = render_digest(digest, server.account.now, 1000).text
    assert text.count("unknown (billed by the carrier)") == digest.unknown_savings + 1  # each row, and the total
    assert not re.search(r"\s\?\s", text)
