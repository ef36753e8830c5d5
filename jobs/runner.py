"""Every job run, however it was started (cron, manual, scheduler), goes through here.

The runner holds the one-run lock for the whole job, records the run in the job
history, skips a scheduler slot that already ran, and on failure sends one alert to
the ops recipients (never a second for the same job and slot).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from reconcile.clock import Clock, system_clock
from reconcile.config import Settings
from reconcile.errors import DeliveryError, LockedError, ReconcileError, StoreError, describe
from reconcile.jobs.cleanup import run_cleanup
from reconcile.jobs.logs import job_fields
from reconcile.jobs.monthly import run_monthly
from reconcile.jobs.nightly import run_nightly
from reconcile.jobs.release import run_due_plans
from reconcile.jobs.runtime import open_store, webhook_for
from reconcile.mail import Transport, build_message, message_id_for, transport_for
from reconcile.metrics import gather, render, write_textfile
from reconcile.redaction import safe_line
from reconcile.reports.alert import render_alert
from reconcile.schedule import latest_slot, slot_key
from reconcile.store import jobs as history
from reconcile.store.database import database_error
from reconcile.store.lock import RunLock

log = logging.getLogger("reconcile.jobs")

T = TypeVar("T")


class Outcome(Protocol):
    """What a job returns: one line for the job history, and whether part of it failed."""

    def line(self) -> str: ...

    def counts(self) -> dict[str, int]: ...

    def raise_for_failures(self) -> None: ...


JobFunction = Callable[[Settings, Engine, Clock], Outcome]
JOBS: dict[str, JobFunction] = {"nightly": run_nightly, "cleanup": run_cleanup, "monthly": run_monthly,
                                "release": run_due_plans}


@dataclass(frozen=True)
class JobResult:
    job: str
    status: str          # succeeded | failed | skipped
    exit_code: int
    summary: str
    slot: str | None


def schedule_of(settings: Settings, job: str) -> str:
    expression: str = getattr(settings.schedule, job)
    return expression


def scheduled(settings: Settings) -> list[str]:
    """The jobs with a schedule (an optional job with an empty expression is off)."""
    return [job for job in JOBS if schedule_of(settings, job)]


def current_slot(settings: Settings, job: str, now: dt.datetime) -> str | None:
    if not schedule_of(settings, job):
        return None
    slot = latest_slot(schedule_of(settings, job), settings.schedule.timezone, now)
    return slot_key(slot) if slot else None


def execute_job(settings: Settings, job: str, trigger: str, clock: Clock = system_clock, slot: str | None = None,
                engine: Engine | None = None, transport: Transport | None = None,
                jobs: dict[str, JobFunction] | None = None) -> JobResult:
    """Run `job` once under the lock; raises what the job raised (after recording it)."""
    jobs = jobs or JOBS
    engine = engine or open_store(settings)
    now = clock()
    if trigger != "manual":  # a manual run is recorded at its own time, under no slot
        slot = slot or current_slot(settings, job, now)
    lock = RunLock(engine)
    try:
        lock.acquire()
    except LockedError as exc:
        _history(history.record_skipped, engine, job, trigger, slot, str(exc), now)
        if trigger == "scheduler":
            log.warning("%s: skipped, %s", job, exc)
            return JobResult(job, "skipped", 5, str(exc), slot)
        raise
    try:
        abandoned = _history(history.abandon_running, engine, now)
        if abandoned:
            log.warning("marked %d earlier job run(s) abandoned: they ended before finishing", abandoned)
        if trigger == "scheduler" and slot and _history(history.ran_for_slot, engine, job, slot):
            log.info("%s: already ran for slot %s", job, slot, extra={"job": job, "slot": slot, "phase": "skipped"})
            return JobResult(job, "skipped", 0, f"already ran for slot {slot}", slot)
        run_id = _history(history.start, engine, job, trigger, slot, now)
        with job_fields(job=job, run_id=run_id, slot=slot, trigger=trigger):
            try:
                return _run(settings, engine, job, trigger, slot, run_id, now, clock, transport, jobs[job])
            finally:
                _metrics(settings, engine, list(jobs))
    finally:
        lock.release()


def _metrics(settings: Settings, engine: Engine, jobs: list[str]) -> None:
    """Rewrite the Prometheus textfile, when configured; a failure to is logged, never the job's."""
    if settings.metrics_textfile is None:
        return
    try:
        write_textfile(settings.metrics_textfile, render(gather(engine, jobs)))
    except (OSError, SQLAlchemyError) as exc:
        log.warning("the metrics file %s was not written: %s", settings.metrics_textfile,
                    exc.strerror if isinstance(exc, OSError) else database_error(exc, "reading the metrics"))


def _run(settings: Settings, engine: Engine, job: str, trigger: str, slot: str | None, run_id: int,
         now: dt.datetime, clock: Clock, transport: Transport | None, function: JobFunction) -> JobResult:
    """One recorded run: the job, its history row, its one log line of outcome, its alert."""
    log.info("%s: started (%s%s)", job, trigger, f", slot {slot}" if slot else "", extra={"phase": "started"})
    started = time.monotonic()
    try:
        outcome = function(settings, engine, clock)
        outcome.raise_for_failures()
        summary = outcome.line()
    except BaseException as exc:
        error = database_error(exc, f"the {job} job") if isinstance(exc, SQLAlchemyError) else exc
        code = error.exit_code if isinstance(error, ReconcileError) else (1 if isinstance(exc, Exception) else 130)
        line = safe_line(describe(error), 500)
        try:
            _history(history.finish, engine, run_id, "failed", code, line, clock())
        except StoreError as store_error:  # the store itself is failing: say so, keep the job's own error
            log.error("%s: %s", job, store_error)
        log.error("%s: failed (exit %d): %s", job, code, line, extra={
            "phase": "finished", "status": "failed", "exit_code": code,
            "duration_s": round(time.monotonic() - started, 3)})
        if isinstance(exc, Exception):
            _alert(settings, engine, run_id, job, trigger, slot, now, code, line, transport)
        raise
    _history(history.finish, engine, run_id, "succeeded", 0, safe_line(summary, 2000), clock())
    log.info("%s: succeeded: %s", job, summary, extra={
        "phase": "finished", "status": "succeeded", "exit_code": 0,
        "duration_s": round(time.monotonic() - started, 3), "counts": outcome.counts()})
    return JobResult(job, "succeeded", 0, summary, slot)


def _history(write: Callable[..., T], *args: object) -> T:
    """A job-history read or write; a database fault becomes the one StoreError line (exit 4)."""
    try:
        return write(*args)
    except SQLAlchemyError as exc:
        raise database_error(exc, "reading or writing the job history") from None


def _alert(settings: Settings, engine: Engine, run_id: int, job: str, trigger: str, slot: str | None,
           started: dt.datetime, code: int, line: str, transport: Transport | None) -> None:
    """One alert per failed slot: a mail to the ops recipients and a post to the webhook, whichever are set."""
    recipients = list(settings.notify.ops_recipients)
    hook = webhook_for(settings)
    if not recipients and hook is None:
        log.warning("%s failed but neither notify.ops_recipients nor a webhook is set: no alert sent", job)
        return
    try:
        alerted = _history(history.alerted_for_slot, engine, job, slot)
    except StoreError as exc:
        log.error("%s: no failure alert: %s", job, exc)
        return
    if alerted:
        log.info("%s: ops were already alerted for slot %s", job, slot)
        return
    local = started.astimezone(ZoneInfo(settings.schedule.timezone)).strftime("%Y-%m-%d %H:%M %Z")
    content = render_alert(job, started, local, slot, code, line, trigger)
    delivered = []
    if recipients:
        try:
            message = build_message(sender=settings.mail.from_address, to=recipients, subject=content.subject,
                                    text=content.text, html=content.html, date=started,
                                    message_id=message_id_for("alert", job, slot or str(run_id)))
            (transport or transport_for(settings.mail)).send(message, recipients)
            delivered.append("mail")
        except (DeliveryError, ValueError) as exc:
            log.error("%s: the failure alert could not be mailed: %s", job, exc)
    if hook is not None:
        try:
            hook.post(f"{content.subject}\n{line}\nstarted {local} by {trigger}"
                      + (f" for the slot {slot}" if slot else "") + "; `reconcile status` shows the history")
            delivered.append("webhook")
        except DeliveryError as exc:
            log.error("%s: the failure alert could not be posted: %s", job, exc)
        finally:
            hook.close()
    if not delivered:
        return
    try:
        _history(history.mark_alerted, engine, run_id)
    except StoreError as exc:
        log.error("%s: the alert was sent but not recorded: %s", job, exc)
