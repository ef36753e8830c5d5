"""`reconcile status`: the last runs of each job, their health, the scheduler's heartbeat, the next slots.

It is a health signal: the exit code is 0 when every job is healthy, 6 when a job's last
run failed, 7 when a job is overdue or the scheduler stopped beating (see
`reconcile.health`); monitoring reads it.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from reconcile.analysis.digests import unrouted_line
from reconcile.clock import format_timestamp, system_clock
from reconcile.config import Settings
from reconcile.delivery import UNKNOWN_HINT
from reconcile.health import job_verdict, scheduler_verdict
from reconcile.jobs.runner import schedule_of, scheduled
from reconcile.review.nightly import unrouted_now
from reconcile.schedule import next_fire
from reconcile.store import digests as sent_log
from reconcile.store import heartbeats, readers
from reconcile.store import jobs as history
from reconcile.store import releases as release_store


def collect_status(settings: Settings, engine: Engine, now: dt.datetime | None = None, runs: int = 5) -> dict[str, Any]:
    now = now or system_clock()
    tz = settings.schedule.timezone
    grace = dt.timedelta(hours=settings.schedule.overdue_after_hours)
    jobs = {}
    codes = []
    for job in scheduled(settings):
        expression = schedule_of(settings, job)
        upcoming = next_fire(expression, tz, now)
        recent = history.recent(engine, job, max(runs, 20))
        verdict = job_verdict(recent, expression, tz, now, grace)
        codes.append(verdict.exit_code)
        jobs[job] = {
            "schedule": expression,
            "health": verdict.state, "health_detail": verdict.detail,
            "next_run": format_timestamp(upcoming) if upcoming else None,
            "next_run_local": upcoming.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z") if upcoming else None,
            "runs": [{
                "started_at": format_timestamp(r.started_at), "finished_at": format_timestamp(r.finished_at) or None,
                "trigger": r.trigger, "slot": r.slot, "status": r.status, "exit_code": r.exit_code,
                "summary": r.summary, "alerted": r.alerted,
            } for r in recent[:runs]],
        }
    seen = heartbeats.last_seen(engine, heartbeats.SCHEDULER)
    scheduler = scheduler_verdict(seen[0] if seen else None, now)
    codes.append(scheduler.exit_code)
    with engine.connect() as connection:
        sync = readers.latest_complete_run(connection)
        unknown = sent_log.unknown_fates(connection)
    unrouted = unrouted_now(engine)
    pending = [{"plan_id": p.id, "release_on": p.release_on.isoformat(), "created_by": p.created_by,
                "numbers": count, "due": p.release_on <= now.date()} for p, count in release_store.pending_counts(engine)]
    failing = [code for code in codes if code]
    return {"now": format_timestamp(now), "timezone": tz, "healthy": not failing,
            "exit_code": failing[0] if failing else 0, "jobs": jobs,
            "scheduler": {"state": scheduler.state, "detail": scheduler.detail,
                          "last_seen": format_timestamp(seen[0]) if seen else None,
                          "where": seen[1] if seen else None},
            "pending_release_plans": pending,
            "last_complete_sync": {"run_id": sync.id, "as_of": format_timestamp(sync.as_of)} if sync else None,
            "unrouted_flagged": {"run_id": unrouted[0], "count": len(unrouted[1]), "numbers": unrouted[1]}
            if unrouted and unrouted[1] else None,
            "mail_of_unknown_fate": [{"recipient": e.recipient, "kind": e.kind, "run_id": e.run_id,
                                      "attempted_at": format_timestamp(e.sent_at)} for e in unknown]}


def format_status(report: dict[str, Any], width: int = 100) -> str:
    verdict = "healthy" if report["healthy"] else f"NOT HEALTHY (exit {report['exit_code']})"
    lines = [f"{verdict}, as of {report['now']} (schedule in {report['timezone']})"]
    sync = report["last_complete_sync"]
    lines.append(f"last complete sync: run {sync['run_id']} as of {sync['as_of']}" if sync else "no complete sync yet")
    lines.append(f"scheduler: {report['scheduler']['state']}: {report['scheduler']['detail']}")
    for plan in report["pending_release_plans"]:
        when = "due now" if plan["due"] else f"due {plan['release_on']}"
        lines.append(f"release plan {plan['plan_id']}: {plan['numbers']} number(s), {when} "
                     f"(made by {plan['created_by']}): `reconcile release apply {plan['plan_id']} --yes`")
    if unrouted := report["unrouted_flagged"]:
        lines.append(f"as of sync run {unrouted['run_id']}, {unrouted_line(unrouted['numbers'], shown=5)}")
    for job, info in report["jobs"].items():
        lines.append(f"\n{job}  [{info['schedule']}]  {info['health'].upper()}: {info['health_detail']}")
        lines.append(f"  next: {info['next_run_local']} ({info['next_run']})")
        if not info["runs"]:
            lines.append("  no runs yet")
        for run in info["runs"]:
            head = (f"  {run['started_at']}  {run['trigger']:<9} {run['status']:<9} "
                    f"exit {run['exit_code'] if run['exit_code'] is not None else '-':<3} ")
            summary = textwrap.shorten(run["summary"] or "", width=max(20, width - len(head)), placeholder=" …")
            lines.append(head + summary)
    unknown = report["mail_of_unknown_fate"]
    if unknown:
        lines.append(f"\nmail of unknown fate ({len(unknown)}): {UNKNOWN_HINT}")
        lines += [f"  {e['attempted_at']}  {e['recipient']} ({e['kind']}, sync run {e['run_id']})" for e in unknown]
    return "\n".join(lines)
