"""How flag streaks move from one evaluation to the next. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import pandas as pd

from reconcile.analysis.rules import RULES, Row
from reconcile.config.settings import FlagSettings


class OpenStreak(NamedTuple):
    """A flag streak not yet resolved: its row in the flag history, the flag it carries and its saving."""

    streak_id: int
    flag: str
    monthly_savings: Decimal | None = None
    currency: str | None = None


@dataclass
class StreakPlan:
    """What an evaluation does to the flag history. Every open streak not resolved goes on
    (its last flagged run moves); `continued` lists only those whose flag or saving changed."""

    new: list[dict[str, Any]] = field(default_factory=list)            # number_id, flag, savings, currency
    continued: list[dict[str, Any]] = field(default_factory=list)      # id, flag, savings, currency
    resolved: list[tuple[int, str]] = field(default_factory=list)      # (streak id, resolution)


def plan_streaks(open_streaks: Mapping[str, OpenStreak], inventory: pd.DataFrame,
                 settings: FlagSettings) -> StreakPlan:
    """open_streaks: number_id -> its open streak. inventory: FlagResult.inventory."""
    plan = StreakPlan()
    flagged = inventory[inventory["flag"] != ""]
    number_ids = flagged["number_id"].tolist()
    for number_id, flag, savings, currency in zip(number_ids, flagged["flag"].tolist(),
                                                  _values(flagged["monthly_savings"]),
                                                  _values(flagged["savings_currency"]), strict=True):
        streak = open_streaks.get(number_id)
        if streak is None:
            plan.new.append({"number_id": number_id, "flag": flag, "monthly_savings": savings, "currency": currency})
        elif (streak.flag, streak.monthly_savings, streak.currency) != (flag, savings, currency):
            plan.continued.append({"id": streak.streak_id, "flag": flag, "monthly_savings": savings,
                                   "currency": currency})
    flagged_ids = set(number_ids)
    ended = {number_id: streak for number_id, streak in open_streaks.items() if number_id not in flagged_ids}
    if ended:
        rows = inventory[inventory["number_id"].isin(list(ended))].set_index("number_id")
        for number_id, streak in ended.items():
            row = {str(k): v for k, v in rows.loc[number_id].items()} if number_id in rows.index else None
            plan.resolved.append((streak.streak_id, resolution(streak.flag, row, settings)))
    return plan


def _values(column: pd.Series) -> list[Any]:
    """The column's values, None for every kind of missing (pandas' string columns hold NaN, which
    PostgreSQL would store as 'NaN'), found by pandas for the whole column at once."""
    return [None if missing else value for value, missing in zip(column.tolist(), column.isna().tolist(), strict=True)]


def resolution(flag: str, row: Row | None, settings: FlagSettings) -> str:
    """Why a flagged number is flagged no more: the store's reasons first, then the rule's own."""
    if row is None:
        return "released"
    if bool(row["protected"]):
        return "protected"
    if flag not in settings.enabled_rules or flag not in RULES:
        return "rule_disabled"
    return RULES[flag].resolved(row, settings)
