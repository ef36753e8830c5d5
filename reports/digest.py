"""A cleanup digest as words: subject, plain text, HTML and the CSV attachment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
FLAG_WHY = {  # the reason, once per group; each row then says only what is its own
    "unassigned": "No AI agent uses these numbers for calls in or out, and they are past their grace period.",
    "orphaned_agent": "The only agents these numbers are assigned to are archived or unknown.",
    "idle": "An active agent has these numbers, but no call, assignment or purchase happened for a long time.",
}
AUDIENCE = {  # whom the digest speaks to, by the recipient's roles
    "owner": "that you are responsible for",
    "default": "that have no owner on record (you are on the default list for them)",
    "finance": "in the whole account (you are on the finance list)",
}
UNKNOWN_COST = "unknown (billed by the carrier)"


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


def day(value: dt.datetime | None) -> str:
    """A date a person reads: "12 Oct 2026"."""
    return "" if value is None else f"{value.astimezone(dt.UTC):%-d %b %Y}"


def since(value: dt.datetime | None, as_of: dt.datetime) -> str:
    """"since 12 Oct 2026, 46 days"."""
    if value is None:
        return ""
    days = (as_of - value).days
    return f"since {day(value)}, {days} day{'s' if days != 1 else ''}" if days else f"since {day(value)}, today"


def detail(row: dict[str, Any], as_of: dt.datetime) -> str:
    """What is this row's own: the group's heading says the rest."""
    if row["flag"] == "unassigned":
        return f"bought {day(row['purchased_at'])}"
    if row["flag"] == "orphaned_agent":
        return str(row.get("agents_text") or "")
    last = row.get("last_call_at")
    return f"idle {row['idle_days']} days; " + (f"last call {day(last)}" if last is not None else "never called")


def render_digest(digest: Digest, as_of: dt.datetime, max_rows: int, contact: str = "",
                  releasing: Mapping[str, dt.date] | None = None) -> DigestContent:
    """`releasing`: number_id -> the date a pending release plan releases it, unless kept."""
    planned = releasing or {}
    shown = digest.rows.head(max_rows)
    groups = []
    for flag in ("unassigned", "orphaned_agent", "idle"):
        rows = list(frame_rows(shown[shown["flag"] == flag]))
        if rows:
            for row in rows:
                row["detail"], row["since"] = detail(row, as_of), since(row["first_flagged_at"], as_of)
                on = planned.get(str(row["number_id"]))
                row["release_on"] = f"{on:%-d %b %Y}" if on else ""
            groups.append({"flag": flag, "title": FLAG_TITLES[flag], "why": FLAG_WHY[flag],
                           "action": rows[0]["recommended_action"], "rows": rows})
    audience = " and ".join(AUDIENCE[role] for role in ("owner", "default", "finance") if role in digest.roles)
    context = {
        "d": digest, "groups": groups, "as_of": as_of, "more": digest.count - len(shown),
        "new_count": len(digest.new_ids), "money": format_display, "ts": format_timestamp, "day": day,
        "audience": audience, "contact": contact, "unknown_cost": UNKNOWN_COST,
        "to_release": sum(1 for n in digest.rows["number_id"] if n in planned),
    }
    env = environment()
    return DigestContent(
        subject=subject_for(digest),
        text=env.get_template("digest.txt.j2").render(**context),
        html=env.get_template("digest.html.j2").render(**context),
        csv=frame_csv_bytes(digest.rows, FLAGGED_COLUMNS + ["savings_basis"]),
        filename=f"flagged-numbers-{as_of:%Y-%m-%d}.csv",
    )
