"""`reconcile scheduler`: one long-running process that runs the jobs on their cron slots.

APScheduler 3 with one in-memory job store, explicit job ids, coalescing, one instance
per job and a misfire grace. Whether a slot was missed while the process was down is
decided from the job history in the store, not from memory, and it is caught up once.
SIGTERM and SIGINT stop it: a running job gets `schedule.stop_grace_s` to finish, then
the process exits without committing it (the store stays as it was).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from reconcile.clock import Clock, system_clock
from reconcile.config import Settings
from reconcile.errors import ReconcileError
from reconcile.health import HEARTBEAT
from reconcile.jobs.runner import execute_job, schedule_of, scheduled
from reconcile.schedule import missed_slot, slot_key, trigger_for
from reconcile.store import heartbeats
from reconcile.store import jobs as history
from reconcile.store.database import database_error

log = logging.getLogger("reconcile.scheduler")


class JobScheduler:
    def __init__(self, settings: Settings, engine: Engine, clock: Clock = system_clock,
                 execute: Callable[..., Any] = execute_job) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.execute = execute
        self.idle = threading.Event()
        self.idle.set()
        self.stopping = threading.Event()
        grace = dt.timedelta(hours=settings.schedule.misfire_grace_hours)
        self.grace = grace
        self.scheduler = BlockingScheduler(
            timezone=settings.schedule.timezone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(grace.total_seconds())},
        )
        for job in self.jobs():
            self.scheduler.add_job(self.fire, trigger=trigger_for(schedule_of(settings, job), settings.schedule.timezone),
                                   id=job, name=f"reconcile {job}", args=[job], replace_existing=True)
        self.scheduler.add_job(self.beat, trigger="interval", seconds=HEARTBEAT.total_seconds(), id="heartbeat",
                               name="reconcile heartbeat", replace_existing=True, misfire_grace_time=None)

    def beat(self) -> None:
        """Say in the store that the scheduler is alive (`reconcile status` reads it); a store fault is logged."""
        try:
            heartbeats.beat(self.engine, heartbeats.SCHEDULER, self.clock(), f"{socket.gethostname()} pid {os.getpid()}")
        except SQLAlchemyError as exc:
            log.warning("the heartbeat could not be written: %s", database_error(exc, "writing the heartbeat"))

    def jobs(self) -> list[str]:
        return scheduled(self.settings)

    def fire(self, job: str, slot: str | None = None) -> bool:
        """Run `job` now unless the scheduler is stopping (after SIGTERM no job starts); whether it ran."""
        if self.stopping.is_set():
            log.info("%s: not started, the scheduler is stopping", job)
            return False
        self.idle.clear()
        try:
            self.execute(self.settings, job, "scheduler", clock=self.clock, slot=slot, engine=self.engine)
            # the runner logged the outcome, once
        except ReconcileError:
            pass  # recorded and alerted by the runner; the scheduler goes on
        except Exception:
            log.exception("%s: unexpected failure (recorded in the job history)", job)
        finally:
            self.idle.set()
        return True

    def catch_up(self) -> list[str]:
        """Run, once, each job's newest slot that has no run in the store (within the misfire grace)."""
        caught = []
        now = self.clock()
        for job in self.jobs():
            if self.stopping.is_set():
                break
            ran = {run.slot for run in history.recent(self.engine, job, limit=50)
                   if run.slot and run.status in ("running", "succeeded", "failed")}
            slot = missed_slot(schedule_of(self.settings, job), self.settings.schedule.timezone, now, ran, self.grace)
            if slot is not None:
                log.info("%s: the slot %s was missed while the scheduler was down; running it now", job, slot_key(slot))
                if self.fire(job, slot_key(slot)):
                    caught.append(slot_key(slot))
        return caught

    def run(self) -> None:
        """Catch up, then serve the slots until SIGTERM or SIGINT."""
        def stop(signum: int, _frame: Any) -> None:
            self.stopping.set()  # at once, in the handler: the catch-up loop checks it before each job
            log.info("signal %d: stopping; a running job gets %.0f s to finish", signum,
                     self.settings.schedule.stop_grace_s)
            threading.Thread(target=self._stop, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.beat()
        self.catch_up()
        if self.stopping.is_set():
            return
        log.info("scheduler started: %s in %s", ", ".join(f"{job}" for job in self.jobs()),
                 self.settings.schedule.timezone)
        self.scheduler.start()

    def _stop(self) -> None:
        self.stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if not self.idle.wait(self.settings.schedule.stop_grace_s):
            log.error("a job was still running after the stop grace; abandoning it (nothing of it is committed)")
            os._exit(143)
