"""Mail: messages built from validated values only, and two transports.

`OutboxTransport` writes .eml files to a folder (the embedded default); `SmtpTransport`
sends by SMTP with STARTTLS or implicit TLS and a login, retrying transient failures
(4xx answers, dropped connections, timeouts) and giving up at once on permanent ones.
No header ever takes customer text: recipients are validated addresses, subjects are
built from counts and amounts, and anything with a line break is refused.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import hashlib
import logging
import random
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from reconcile.addresses import is_email
from reconcile.config.settings import MailSettings
from reconcile.errors import DeliveryError
from reconcile.retry import RetryPolicy

log = logging.getLogger("reconcile.mail")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str = "text"
    subtype: str = "csv"

    @classmethod
    def html_page(cls, filename: str, content: bytes) -> Attachment:
        return cls(filename, content, "text", "html")

    @classmethod
    def workbook(cls, filename: str, content: bytes) -> Attachment:
        return cls(filename, content, "application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _header_text(name: str, value: str) -> str:
    if any(ch in value for ch in "\r\n\x00") or len(value) > 900:
        raise ValueError(f"refusing a {name} header with a line break or of {len(value)} characters")
    return value


def _addresses(name: str, values: Sequence[str]) -> list[str]:
    for value in values:
        if not is_email(value):
            raise ValueError(f"refusing {name} address {value[:80]!r}: not a plain e-mail address")
    return list(values)


def envelope_sender(from_address: str) -> str:
    return email.utils.parseaddr(from_address)[1]


def message_id_for(*parts: str, domain: str = "reconcile.local") -> str:
    """A Message-ID that is the same whenever the same digest is built again (run, recipient)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()
    return f"<{digest}@{domain}>"


def build_message(*, sender: str, to: Sequence[str], cc: Sequence[str] = (), subject: str, text: str, html: str,
                  attachments: Sequence[Attachment] = (), message_id: str, date: dt.datetime,
                  reply_to: str = "") -> EmailMessage:
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = _header_text("From", sender)
    message["To"] = ", ".join(_addresses("To", to))
    if cc:
        message["Cc"] = ", ".join(_addresses("Cc", cc))
    message["Subject"] = _header_text("Subject", subject)
    message["Date"] = email.utils.format_datetime(date.astimezone(dt.UTC))
    message["Message-ID"] = _header_text("Message-ID", message_id)
    message["Auto-Submitted"] = "auto-generated"
    if reply_to:
        message["Reply-To"] = ", ".join(_addresses("Reply-To", [reply_to]))
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    for attachment in attachments:
        name = _header_text("filename", attachment.filename)
        # the file's own bytes (base64); text declares UTF-8, so a label like "Zürich" arrives as itself
        charset = {"charset": "utf-8"} if attachment.maintype == "text" else None
        message.add_attachment(attachment.content, maintype=attachment.maintype, subtype=attachment.subtype,
                               filename=name, params=charset)
    return message


@dataclass(frozen=True)
class Handed:
    """A message the server (or the outbox) took: where it went, and the addresses it refused."""

    where: str
    refused: dict[str, str] = field(default_factory=dict)   # address -> the server's answer


class Transport(Protocol):
    def send(self, message: EmailMessage, recipients: Sequence[str]) -> Handed: ...

    def check(self) -> str:
        """Whether mail could go out now, sending nothing: what was checked; DeliveryError if not."""
        ...


class OutboxTransport:
    """Messages become .eml files in a folder; nothing leaves the machine."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage, recipients: Sequence[str]) -> Handed:
        slug = re.sub(r"[^A-Za-z0-9.@_-]", "_", recipients[0] if recipients else "nobody")
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        token = hashlib.blake2b(str(message["Message-ID"]).encode(), digest_size=4).hexdigest()
        path = self.directory / f"{stamp}-{slug}-{token}.eml"
        temporary = path.with_suffix(".tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(message.as_bytes())
            temporary.replace(path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise DeliveryError(f"cannot write to the outbox {self.directory}: {exc.strerror}") from None
        return Handed(str(path))

    def check(self) -> str:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / ".reconcile-doctor"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise DeliveryError(f"cannot write to the outbox {self.directory}: {exc.strerror}") from None
        return f"no SMTP server set: messages go to the outbox {self.directory} (writable)"


TRANSIENT_ERRORS = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, socket.timeout, ConnectionError)


class MaybeDelivered(DeliveryError):  # noqa: N818 - a DeliveryError whose message may have arrived
    """The connection failed after the message data was sent: the server may have accepted it.

    Never retried: a second copy is worse than a missing one, which the sent log reports.
    """


class SmtpTransport:
    """SMTP by hand, phase by phase, so that a failure after the data was sent is never retried.

    A message counts as sent when the server answers 250 to its data, whatever QUIT says
    afterwards; recipients it refused (while it took others) are returned, not raised.
    """

    def __init__(self, settings: MailSettings, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self.sleep = sleep
        self.policy = RetryPolicy(max_attempts=settings.smtp_max_attempts, backoff_base_s=0.5, backoff_cap_s=30.0)
        self.rng = rng or random.Random()

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.smtp_ca_file or None)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.smtp_security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s,
                                                  context=self._context())
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s)
        try:
            if s.smtp_security == "starttls":
                smtp.starttls(context=self._context())
            if s.smtp_username:
                _login(smtp, s.smtp_username, s.smtp_password.reveal())
        except BaseException:
            smtp.close()  # a failed handshake or login must not leak the connection
            raise
        return smtp

    def check(self) -> str:
        """Connect, secure and log in as for a real message, then QUIT: nothing is sent."""
        s = self.settings
        where = f"{s.smtp_host}:{s.smtp_port}"
        try:
            smtp = self._connect()
        except smtplib.SMTPAuthenticationError:
            raise DeliveryError(f"the mail server {where} refused the login of {s.smtp_username!r}: "
                                "check mail.smtp_username and RECONCILE_SMTP_PASSWORD") from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(f"the mail server {where} has a certificate we do not trust "
                                f"({exc.verify_message}): set mail.smtp_ca_file") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"the mail server {where} did not answer as it should "
                                f"({type(exc).__name__}: {_reply(str(exc))})") from None
        _quit_quietly(smtp)
        login = f", logged in as {s.smtp_username!r}" if s.smtp_username else ""
        return f"{where} answered ({s.smtp_security}{login})"

    def send(self, message: EmailMessage, recipients: Sequence[str]) -> Handed:
        s = self.settings
        where = f"{s.smtp_host}:{s.smtp_port}"
        for attempt in range(1, self.policy.max_attempts + 1):
            phase = "connect"
            try:
                smtp = self._connect()
                try:
                    phase = "envelope"
                    refused = _envelope(smtp, envelope_sender(s.from_address), recipients)
                    phase = "data"
                    code, reply = smtp.data(message.as_bytes())
                    if code != 250:
                        raise smtplib.SMTPDataError(code, reply)
                finally:
                    _quit_quietly(smtp)
                return Handed(where, refused)
            except smtplib.SMTPAuthenticationError:
                raise DeliveryError(f"the mail server {where} refused the login of {s.smtp_username!r}: "
                                    "check mail.smtp_username and RECONCILE_SMTP_PASSWORD") from None
            except smtplib.SMTPRecipientsRefused as exc:
                codes = {code for code, _ in exc.recipients.values()}
                if all(400 <= code < 500 for code in codes) and attempt < self.policy.max_attempts:
                    self._wait(attempt, where, f"recipients deferred ({sorted(codes)})")
                    continue
                raise DeliveryError(f"the mail server {where} refused the recipients ({sorted(codes)})") from None
            except smtplib.SMTPResponseException as exc:
                if 400 <= exc.smtp_code < 500 and attempt < self.policy.max_attempts:
                    self._wait(attempt, where, f"{exc.smtp_code}")
                    continue
                raise DeliveryError(f"the mail server {where} answered {exc.smtp_code}: "
                                    f"{_reply(exc.smtp_error)}") from None
            except (*TRANSIENT_ERRORS, ssl.SSLError, OSError) as exc:
                if phase == "data":
                    raise MaybeDelivered(f"the connection to {where} failed while the message was being "
                                         f"accepted ({type(exc).__name__}): it may have arrived") from None
                if isinstance(exc, ssl.SSLCertVerificationError):
                    raise DeliveryError(f"the mail server {where} has a certificate we do not trust "
                                        f"({exc.verify_message}): set mail.smtp_ca_file") from None
                if attempt < self.policy.max_attempts:
                    self._wait(attempt, where, type(exc).__name__)
                    continue
                raise DeliveryError(f"cannot deliver through {where} after {attempt} attempt(s): "
                                    f"{type(exc).__name__}") from None
        raise DeliveryError(f"cannot deliver through {where}")

    def _wait(self, attempt: int, where: str, why: str) -> None:
        delay = self.policy.delay_s(attempt, None, dt.datetime.now(dt.UTC), self.rng)
        log.warning("mail server %s: %s (attempt %d of %d); retrying in %.1f s", where, why, attempt,
                    self.policy.max_attempts, delay)
        self.sleep(delay)


def _envelope(smtp: smtplib.SMTP, sender: str, recipients: Sequence[str]) -> dict[str, str]:
    """MAIL FROM and RCPT TO; the addresses refused (SMTPRecipientsRefused when all are)."""
    smtp.ehlo_or_helo_if_needed()
    code, reply = smtp.mail(sender)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    refused: dict[str, tuple[int, bytes]] = {}
    for address in recipients:
        code, reply = smtp.rcpt(address)
        if code not in (250, 251):
            refused[address] = (code, reply)
    if len(refused) == len(recipients):
        smtp.rset()
        raise smtplib.SMTPRecipientsRefused(refused)
    return {address: f"{code} {_reply(reply)}" for address, (code, reply) in refused.items()}


def _quit_quietly(smtp: smtplib.SMTP) -> None:
    """End the session; what QUIT answers (421, a dropped line) changes nothing about what was sent."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """Log in with one mechanism (PLAIN, else LOGIN): a refused login fails once, at once.

    smtplib's own `login` tries every advertised mechanism in turn, which turns one
    wrong password into several attempts and, with some servers, a stalled session.
    """
    smtp.ehlo_or_helo_if_needed()
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
    if mechanism is None:
        smtp.login(username, password)
        return
    smtp.user, smtp.password = username, password
    try:
        method = smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login
        smtp.auth(mechanism, method, initial_response_ok=True)
    finally:
        smtp.password = ""


def _reply(error: bytes | str) -> str:
    text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
    return " ".join(text.split())[:200]


def transport_for(settings: MailSettings) -> Transport:
    return SmtpTransport(settings) if settings.smtp_host else OutboxTransport(settings.outbox_dir)
