"""`reconcile status`: the last runs of each job and the next scheduled times."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from reconcile.clock import format_timestamp, system_clock
from reconcile.config import Settings
from reconcile.delivery import UNKNOWN_HINT
from reconcile.jobs.runner import JOBS, schedule_of
from reconcile.schedule import next_fire
from reconcile.store import digests as sent_log
from reconcile.store import jobs as history
from reconcile.store import readers


def collect_status(settings: Settings, engine: Engine, now: dt.datetime | None = None, runs: int = 5) -> dict[str, Any]:
    now = now or system_clock()
    tz = settings.schedule.timezone
    jobs = {}
    for job in ("nightly", "cleanup", "monthly"):
        expression = schedule_of(settings, job)
        upcoming = next_fire(expression, tz, now) if job in JOBS else None
        jobs[job] = {
            "schedule": expression,
            "available": job in JOBS,
            "next_run": format_timestamp(upcoming) if upcoming else None,
            "next_run_local": upcoming.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z") if upcoming else None,
            "runs": [{
                "started_at": format_timestamp(r.started_at), "finished_at": format_timestamp(r.finished_at) or None,
                "trigger": r.trigger, "slot": r.slot, "status": r.status, "exit_code": r.exit_code,
                "summary": r.summary, "alerted": r.alerted,
            } for r in history.recent(engine, job, runs)],
        }
    with engine.connect() as connection:
        sync = readers.latest_complete_run(connection)
        unknown = sent_log.unknown_fates(connection)
    return {"now": format_timestamp(now), "timezone": tz, "jobs": jobs,
            "last_complete_sync": {"run_id": sync.id, "as_of": format_timestamp(sync.as_of)} if sync else None,
            "mail_of_unknown_fate": [{"recipient": e.recipient, "kind": e.kind, "run_id": e.run_id,
                                      "attempted_at": format_timestamp(e.sent_at)} for e in unknown]}


def format_status(report: dict[str, Any]) -> str:
    lines = [f"as of {report['now']} (schedule in {report['timezone']})"]
    sync = report["last_complete_sync"]
    lines.append(f"last complete sync: run {sync['run_id']} as of {sync['as_of']}" if sync else "no complete sync yet")
    for job, info in report["jobs"].items():
        if not info["available"]:
            lines.append(f"\n{job}: not available in this version")
            continue
        lines.append(f"\n{job}  [{info['schedule']}]  next: {info['next_run_local']} ({info['next_run']})")
        if not info["runs"]:
            lines.append("  no runs yet")
        for run in info["runs"]:
            summary = (run["summary"] or "")[:90]
            lines.append(f"  {run['started_at']}  {run['trigger']:<9} {run['status']:<9} "
                         f"exit {run['exit_code'] if run['exit_code'] is not None else '-':<3} {summary}")
    unknown = report["mail_of_unknown_fate"]
    if unknown:
        lines.append(f"\nmail of unknown fate ({len(unknown)}): {UNKNOWN_HINT}")
        lines += [f"  {e['attempted_at']}  {e['recipient']} ({e['kind']}, sync run {e['run_id']})" for e in unknown]
    return "\n".join(lines)
