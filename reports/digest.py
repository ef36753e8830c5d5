"""A cleanup digest as words: subject, plain text, HTML and the CSV attachment."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reconcile.analysis.digests import Digest
from reconcile.analysis.flags import FLAGGED_COLUMNS
from reconcile.clock import format_timestamp
from reconcile.money import format_amount, format_display
from reconcile.reports.csvfile import frame_csv_bytes, frame_rows
from reconcile.reports.environment import environment

FLAG_TITLES = {
    "unassigned": "No agent assigned",
    "orphaned_agent": "Only archived or unknown agents",
    "idle": "Assigned but idle",
}


@dataclass(frozen=True)
class DigestContent:
    subject: str
    text: str
    html: str
    csv: bytes
    filename: str


def subject_for(digest: Digest) -> str:
    """Counts and amounts only: nothing from customer text reaches a header."""
    money = ", ".join(f"{format_amount(t.amount, t.currency)} {t.currency}" for t in digest.totals) or "no known fee"
    noun = "number" if digest.count == 1 else "numbers"
    return f"{digest.count} Truedy phone {noun} cost {money} a month and do nothing"


def render_digest(digest: Digest, as_of: dt.datetime, max_rows: int) -> DigestContent:
    shown = digest.rows.head(max_rows)
    groups = []
    for flag in ("unassigned", "orphaned_agent", "idle"):
        rows = list(frame_rows(shown[shown["flag"] == flag]))
        if rows:
            groups.append({"flag": flag, "title": FLAG_TITLES[flag], "rows": rows})
    context = {
        "d": digest, "groups": groups, "as_of": as_of, "more": digest.count - len(shown),
        "new_count": len(digest.new_ids), "money": format_display, "ts": format_timestamp,
        "day": lambda value: format_timestamp(value)[:10] if value is not None else "",
    }
    env = environment()
    return DigestContent(
        subject=subject_for(digest),
        text=env.get_template("digest.txt.j2").render(**context),
        html=env.get_template("digest.html.j2").render(**context),
        csv=frame_csv_bytes(digest.rows, FLAGGED_COLUMNS + ["savings_basis"]),
        filename=f"flagged-numbers-{as_of:%Y-%m-%d}.csv",
    )
