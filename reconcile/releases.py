"""Which flagged numbers a release plan takes, and whether each may still be released when applied. Pure.

A plan takes Truedy-managed numbers flagged for at least `min_flagged_days` (protected and
kept numbers are never flagged, so never taken); imported numbers are listed apart, as
their carrier releases them. When the plan is applied, each number is checked again
against the live record: still there and not released, not kept since, the price not
raised, and its flag still true (no active agent took it; no call since the plan).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd

from reconcile.truedy.records import PhoneNumber


@dataclass(frozen=True)
class Criteria:
    rules: tuple[str, ...] = ("unassigned", "orphaned_agent", "idle")
    min_flagged_days: int = 30
    max_numbers: int | None = None
    label_pattern: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"rules": list(self.rules), "min_flagged_days": self.min_flagged_days,
                "max_numbers": self.max_numbers, "label_pattern": self.label_pattern}


def choose(flagged: pd.DataFrame, criteria: Criteria, as_of: dt.datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the numbers the plan takes, the imported ones that would qualify but are released at their carrier),
    the most expensive first."""
    since = pd.Timestamp(as_of - dt.timedelta(days=criteria.min_flagged_days))
    first = pd.to_datetime(flagged["first_flagged_at"], utc=True)
    mask = flagged["flag"].isin(criteria.rules) & (first <= since)
    if criteria.label_pattern:
        pattern = re.compile(criteria.label_pattern)
        mask &= flagged["label"].map(lambda label: isinstance(label, str) and pattern.search(label) is not None)
    qualified = flagged[mask]
    managed = qualified[qualified["is_truedy_managed"].astype(bool)]
    order = sorted(range(len(managed)), key=lambda i: (-_amount(managed["monthly_savings"].iloc[i]),
                                                      str(managed["number_id"].iloc[i])))
    chosen = managed.iloc[order]
    if criteria.max_numbers is not None:
        chosen = chosen.head(criteria.max_numbers)
    return chosen.reset_index(drop=True), qualified[~qualified["is_truedy_managed"].astype(bool)].reset_index(drop=True)


def _amount(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(-1)


@dataclass(frozen=True)
class Decision:
    action: str                       # release | skip | already
    why: str
    unassign: tuple[str, ...] = ()    # directions to unassign before the release


@dataclass(frozen=True)
class Planned:
    """What the plan recorded of one number."""

    number_id: str
    flag: str
    monthly_cost: Decimal | None


def decide(item: Planned, live: PhoneNumber | None, kept_by: str | None, agent_status: Mapping[str, str],
           called_since_plan: Set[str]) -> Decision:
    """Whether to release `item` now, from the live record and what changed since the plan."""
    if live is None:
        return Decision("skip", "the Truedy API no longer knows this number")
    if live.status == "released":
        when = f" on {live.released_at:%Y-%m-%d %H:%M}Z" if live.released_at else ""
        return Decision("already", f"already released{when}")
    if kept_by is not None:
        return Decision("skip", f"kept since the plan ({kept_by})")
    if live.status != "active":
        return Decision("skip", f"it is {live.status}, not active")
    cost = live.cost_information.monthly_cost if live.cost_information else None
    if item.monthly_cost is not None and cost is not None and cost > item.monthly_cost:
        return Decision("skip", f"its price rose from {item.monthly_cost} to {cost} since the plan")
    agents = [a for a in (live.assignment("inbound"), live.assignment("outbound")) if a is not None]
    active = [a.agent_id for a in agents if agent_status.get(a.agent_id) == "active"]
    if item.flag in ("unassigned", "orphaned_agent") and active:
        return Decision("skip", f"an active agent took it since the plan ({', '.join(active)})")
    if item.flag == "idle" and item.number_id in called_since_plan:
        return Decision("skip", "it was called since the plan")
    if item.flag == "idle" and not active:
        return Decision("skip", "its agent is no longer active: the flag changed, plan it again")
    return Decision("release", f"still {item.flag}", tuple(a.assignment_type for a in agents))
