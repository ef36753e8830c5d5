"""The cleanup job: one digest per recipient for the newest complete run, sent exactly once."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass, field
from email.message import EmailMessage

from sqlalchemy import Engine

from reconcile.analysis.digests import UNROUTED_HINT, Digest, build_digests, unrouted_line
from reconcile.clock import Clock, system_clock
from reconcile.config import Settings
from reconcile.delivery import UNKNOWN_HINT, DeliveryOutcome, deliver_once
from reconcile.errors import DeliveryError
from reconcile.mail import Attachment, Transport, build_message, message_id_for, transport_for
from reconcile.money import format_amount
from reconcile.reports.digest import render_digest
from reconcile.review.nightly import evaluate_run, phones, routing_of
from reconcile.store import digests as sent_log
from reconcile.store import releases as release_store

log = logging.getLogger("reconcile.cleanup")


@dataclass
class CleanupOutcome:
    run_id: int
    digests: list[Digest]
    dry_run: bool
    sent: dict[str, str] = field(default_factory=dict)      # recipient -> where it went
    skipped: list[str] = field(default_factory=list)        # already sent for this run
    failed: dict[str, str] = field(default_factory=dict)    # recipient -> why
    unknown: list[str] = field(default_factory=list)        # an earlier attempt's fate is unknown: not resent
    bad_owner_values: int = 0
    unrouted: list[str] = field(default_factory=list)       # flagged numbers no digest reaches (phone numbers)

    def lines(self) -> list[str]:
        out = []
        for digest in self.digests:
            money = ", ".join(f"{format_amount(t.amount, t.currency)} {t.currency}" for t in digest.totals) or "-"
            if self.dry_run:
                state = "would send"
            elif digest.recipient in self.sent:
                state = "sent"
            elif digest.recipient in self.skipped:
                state = "already sent for this run"
            elif digest.recipient in self.unknown:
                state = f"NOT resent, fate unknown: {UNKNOWN_HINT}"
            else:
                state = f"FAILED: {self.failed.get(digest.recipient, '?')}"
            out.append(f"{digest.recipient} ({'+'.join(digest.roles)}): {digest.count} numbers, "
                       f"{len(digest.new_ids)} new, {money} a month: {state}")
        if self.unrouted:
            out.append(unrouted_line(self.unrouted))
        if self.bad_owner_values:
            out.append(f"{self.bad_owner_values} owner value(s) in agent metadata are not e-mail addresses; "
                       "their numbers went to the default recipients")
        verb = "would send" if self.dry_run else "sent"
        out.append(f"cleanup for sync run {self.run_id}: {verb} {len(self.sent) if not self.dry_run else len(self.digests)}"
                   f" digest(s), {len(self.skipped)} already sent, {len(self.failed)} failed"
                   + (f", {len(self.unknown)} of unknown fate (not resent)" if self.unknown else ""))
        return out

    def line(self) -> str:
        return self.lines()[-1]

    def counts(self) -> dict[str, int]:
        return {"digests": len(self.digests), "sent": len(self.sent), "already_sent": len(self.skipped),
                "failed": len(self.failed), "unknown_fate": len(self.unknown), "unrouted": len(self.unrouted)}

    def raise_for_failures(self) -> None:
        if self.failed:
            raise DeliveryError(f"{len(self.failed)} of {len(self.digests)} digest(s) failed "
                                f"({', '.join(sorted(self.failed))}); the others were sent: rerun to send only "
                                "the missing ones")


def run_cleanup(settings: Settings, engine: Engine, clock: Clock = system_clock, transport: Transport | None = None,
                dry_run: bool = False, resend_unknown: bool = False) -> CleanupOutcome:
    """Send the digests of the newest complete run. The caller holds the run lock."""
    evaluation = evaluate_run(settings, engine, record_history=not dry_run)
    result, run_id = evaluation.result, evaluation.run.id
    with engine.connect() as connection:
        previous = sent_log.previous_numbers(connection, run_id)
    releasing = release_store.releasing(engine)
    routing = routing_of(settings, evaluation)
    digests = build_digests(result.flagged, routing, previous)
    outcome = CleanupOutcome(run_id, digests, dry_run, bad_owner_values=routing.bad_owner_values,
                             unrouted=phones(result.flagged, routing.unrouted))
    if outcome.unrouted:
        log.warning("%d flagged number(s) reach nobody: %s", len(outcome.unrouted), UNROUTED_HINT)
    if dry_run:
        return outcome
    transport = transport or transport_for(settings.mail)
    for digest in digests:
        try:
            delivery = deliver_once(
                engine, transport, functools.partial(_message, settings, digest, run_id, evaluation.run.as_of, releasing),
                run_id=run_id, kind="cleanup",
                envelopes={digest.recipient: [digest.recipient, *settings.notify.cc, *settings.notify.bcc]},
                number_ids=list(digest.rows["number_id"]), clock=clock, resend_unknown=resend_unknown)
        except ValueError as exc:  # a message we refuse to build (a header would break): not sent, not logged
            delivery = DeliveryOutcome(failed={digest.recipient: str(exc)})
        outcome.sent.update(delivery.sent)
        outcome.skipped += delivery.skipped
        outcome.unknown += delivery.unknown
        outcome.failed.update(delivery.failed)
        for recipient, why in delivery.failed.items():
            log.error("digest for %s failed: %s", recipient, why)
    return outcome


def _message_id(run_id: int, digest: Digest) -> str:
    return message_id_for("cleanup", str(run_id), digest.recipient)


def _message(settings: Settings, digest: Digest, run_id: int, as_of: dt.datetime,
             releasing: dict[str, dt.date]) -> EmailMessage:
    content = render_digest(digest, as_of, settings.notify.digest_max_rows, settings.notify.contact, releasing)
    return build_message(
        sender=settings.mail.from_address, to=[digest.recipient], cc=settings.notify.cc, subject=content.subject,
        text=content.text, html=content.html, attachments=[Attachment(content.filename, content.csv)],
        message_id=_message_id(run_id, digest), date=as_of, reply_to=settings.notify.contact)
