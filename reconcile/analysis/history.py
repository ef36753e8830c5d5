"""How flag streaks move from one evaluation to the next. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pandas as pd

from reconcile.analysis.rules import RULES, Row
from reconcile.config.settings import FlagSettings


class OpenStreak(NamedTuple):
    """A flag streak not yet resolved: its row in the flag history and the flag it carries."""

    streak_id: int
    flag: str


@dataclass
class StreakPlan:
    new: list[dict[str, Any]] = field(default_factory=list)            # number_id, flag, savings, currency
    continued: list[dict[str, Any]] = field(default_factory=list)      # id, flag, savings, currency
    resolved: list[tuple[int, str]] = field(default_factory=list)      # (streak id, resolution)


def plan_streaks(open_streaks: Mapping[str, OpenStreak], inventory: pd.DataFrame,
                 settings: FlagSettings) -> StreakPlan:
    """open_streaks: number_id -> its open streak. inventory: FlagResult.inventory."""
    plan = StreakPlan()
    rows = inventory.set_index("number_id")
    flagged = rows[rows["flag"] != ""]
    for number_id, flagged_row in flagged.iterrows():
        values = {"flag": flagged_row["flag"], "monthly_savings": _value(flagged_row["monthly_savings"]),
                  "currency": _value(flagged_row["savings_currency"])}
        if number_id in open_streaks:
            plan.continued.append({"id": open_streaks[str(number_id)].streak_id, **values})
        else:
            plan.new.append({"number_id": number_id, **values})
    for number_id, streak in open_streaks.items():
        if number_id in flagged.index:
            continue
        row = {str(k): v for k, v in rows.loc[number_id].items()} if number_id in rows.index else None
        plan.resolved.append((streak.streak_id, resolution(streak.flag, row, settings)))
    return plan


def _value(value: Any) -> Any:
    """None for every kind of missing (pandas' string columns hold NaN, which PostgreSQL would store as 'NaN')."""
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def resolution(flag: str, row: Row | None, settings: FlagSettings) -> str:
    """Why a flagged number is flagged no more: the store's reasons first, then the rule's own."""
    if row is None:
        return "released"
    if bool(row["protected"]):
        return "protected"
    if flag not in settings.enabled_rules or flag not in RULES:
        return "rule_disabled"
    return RULES[flag].resolved(row, settings)
