"""Mail delivered at most once per run and recipient, whatever fails or is killed on the way.

The sent log is written before the message is handed to the server (`sending`) and
after it answered (`sent`, or `refused` with the addresses it refused). So:
- a rerun never sends again what the server accepted, even when the process died
  between the server's 250 and the log's commit: that row stays `sending`, and the
  message's fate is *unknown*: reported (status, the next run's output), never resent
  unless the operator asks for it (`--resend-unknown`);
- a recipient the server refused, while it took the Cc/Bcc copies, is resent alone;
- a message the server certainly did not take (refused, unreachable before the data)
  is forgotten, and the next run sends it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage

from sqlalchemy import Engine

from reconcile.clock import Clock
from reconcile.errors import DeliveryError
from reconcile.mail import MaybeDelivered, Transport
from reconcile.store import digests as sent_log

log = logging.getLogger("reconcile.mail")


@dataclass
class DeliveryOutcome:
    sent: dict[str, str] = field(default_factory=dict)      # recipient -> where it went
    skipped: list[str] = field(default_factory=list)        # delivered by an earlier run of the job
    unknown: list[str] = field(default_factory=list)        # an attempt whose fate is unknown: not resent
    failed: dict[str, str] = field(default_factory=dict)    # recipient -> why it was not delivered


UNKNOWN_HINT = ("the process stopped while the mail server had it, so it may have arrived: check the mail "
                "server's log; the same command with --resend-unknown sends it again")


def deliver_once(engine: Engine, transport: Transport, build: Callable[[], EmailMessage], *, run_id: int, kind: str,
                 envelopes: Mapping[str, Sequence[str]], number_ids: list[str], clock: Clock,
                 resend_unknown: bool = False, once_per_run: bool = True) -> DeliveryOutcome:
    """Send one message to the recipients (`envelopes`: log key -> its addresses) that still need it.

    `once_per_run=False`: once per `kind` whatever the run (the review of a month).
    """
    outcome = DeliveryOutcome()
    with engine.connect() as connection:
        logged = sent_log.entries(connection, run_id if once_per_run else None, kind)
    due: dict[str, list[str]] = {}
    for recipient, addresses in envelopes.items():
        entry = logged.get(recipient)
        if entry is None:
            due[recipient] = list(addresses)
        elif entry.status == sent_log.SENT:
            outcome.skipped.append(recipient)
        elif entry.status == sent_log.SENDING and not resend_unknown:
            outcome.unknown.append(recipient)
        elif entry.status == sent_log.REFUSED:
            due[recipient] = [a for a in addresses if a in entry.refused] or list(addresses)
        else:
            due[recipient] = list(addresses)
    if not due:
        return outcome
    message = build()
    message_id = str(message["Message-ID"])
    with engine.begin() as connection:
        for recipient in due:
            sent_log.record_attempt(connection, run_id, recipient, clock(), message_id, number_ids, kind)
    addresses = list(dict.fromkeys(a for group in due.values() for a in group))
    try:
        handed = transport.send(message, addresses)
    except MaybeDelivered as exc:
        log.error("%s for %s: %s", kind, ", ".join(due), exc)
        outcome.unknown += list(due)
        return outcome
    except DeliveryError as exc:
        with engine.begin() as connection:
            for recipient in due:
                sent_log.forget_attempt(connection, run_id, recipient, kind)
        outcome.failed.update({recipient: str(exc) for recipient in due})
        return outcome
    with engine.begin() as connection:
        for recipient, group in due.items():
            refused = {a: why for a, why in handed.refused.items() if a in group}
            sent_log.record_outcome(connection, run_id, recipient, kind, refused)
            if refused:
                outcome.failed[recipient] = "the mail server refused " + "; ".join(
                    f"{a} ({why})" for a, why in sorted(refused.items()))
            else:
                outcome.sent[recipient] = handed.where
    return outcome
