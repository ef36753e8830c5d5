"""How flag streaks move from one evaluation to the next. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class StreakPlan:
    new: list[dict[str, Any]] = field(default_factory=list)            # number_id, flag, savings, currency
    continued: list[dict[str, Any]] = field(default_factory=list)      # id, flag, savings, currency
    resolved: list[tuple[int, str]] = field(default_factory=list)      # (streak id, resolution)


def plan_streaks(
    open_streaks: Mapping[str, tuple[int, str]], inventory: pd.DataFrame, enabled_rules: tuple[str, ...],
    idle_days_threshold: int,
) -> StreakPlan:
    """open_streaks: number_id -> (streak id, flag). inventory: FlagResult.inventory."""
    plan = StreakPlan()
    rows = inventory.set_index("number_id")
    flagged = rows[rows["flag"] != ""]
    for number_id, row in flagged.iterrows():
        values = {"flag": row["flag"], "monthly_savings": row["monthly_savings"], "currency": row["savings_currency"]}
        if number_id in open_streaks:
            plan.continued.append({"id": open_streaks[number_id][0], **values})
        else:
            plan.new.append({"number_id": number_id, **values})
    for number_id, (streak_id, flag) in open_streaks.items():
        if number_id in flagged.index:
            continue
        plan.resolved.append((streak_id, resolution(flag, rows.loc[number_id] if number_id in rows.index else None,
                                                    enabled_rules, idle_days_threshold)))
    return plan


def resolution(flag: str, row: pd.Series | None, enabled_rules: tuple[str, ...], idle_days_threshold: int) -> str:
    """Why a flagged number is flagged no more."""
    if row is None:
        return "released"
    if bool(row["protected"]):
        return "protected"
    if flag not in enabled_rules:
        return "rule_disabled"
    if flag in ("unassigned", "orphaned_agent") and bool(row["has_active_agent"]):
        return "assigned"
    if flag == "idle" and int(row["idle_days"]) < idle_days_threshold:
        return "used_again"
    return "no_longer_flagged"
