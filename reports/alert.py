"""The alert ops get when a job fails: which job, when, the error line, what to do."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reconcile.clock import format_timestamp
from reconcile.reports.environment import environment


@dataclass(frozen=True)
class AlertContent:
    subject: str
    text: str
    html: str


def render_alert(job: str, started: dt.datetime, local: str, slot: str | None, exit_code: int, error: str,
                 trigger: str) -> AlertContent:
    context = {"job": job, "started": format_timestamp(started), "local": local, "slot": slot,
               "exit_code": exit_code, "error": error, "trigger": trigger}
    env = environment()
    return AlertContent(
        subject=f"reconcile: the {job} job failed (exit {exit_code})",
        text=env.get_template("alert.txt.j2").render(**context),
        html=env.get_template("alert.html.j2").render(**context),
    )
