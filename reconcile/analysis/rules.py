"""Waste flags as rules registered by name.

Each rule is one small unit: a name, the action it recommends, and
`evaluate(frame, flag_settings) -> mask` over the enriched inventory (see
`reconcile.analysis.flags.enrich`). Rules are mutually exclusive by construction;
config switches them on and off (`flags.enabled_rules`) and tunes their parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from reconcile.config import FlagSettings


@dataclass(frozen=True)
class Rule:
    name: str
    recommended_action: str
    evaluate: Callable[[pd.DataFrame, FlagSettings], pd.Series]
    explain: Callable[[dict, FlagSettings], str]


RULES: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    if rule.name in RULES:
        raise ValueError(f"rule {rule.name!r} registered twice")
    RULES[rule.name] = rule
    return rule


def _day(value: object) -> str:
    return "?" if value is None or pd.isna(value) else value.strftime("%Y-%m-%d")  # type: ignore[attr-defined]


register(Rule(
    name="unassigned",
    recommended_action="release, or assign it to an agent",
    evaluate=lambda f, p: ~f["has_assignment"] & f["past_grace"],
    explain=lambda row, p: f"no agent assigned; bought {_day(row['purchased_at'])} ({row['age_days']} days ago)",
))

register(Rule(
    name="orphaned_agent",
    recommended_action="release, or move it to an active agent",
    evaluate=lambda f, p: f["has_assignment"] & ~f["has_active_agent"] & f["past_grace"],
    explain=lambda row, p: f"assigned only to {row['agents_text']}, none of them active",
))

register(Rule(
    name="idle",
    recommended_action="release, unless it is kept on purpose (then protect it)",
    evaluate=lambda f, p: f["has_active_agent"] & (f["idle_days"] >= p.idle_days_threshold),
    explain=lambda row, p: (
        f"no activity for {row['idle_days']} days (threshold {p.idle_days_threshold}); "
        + ("never called" if pd.isna(row["last_call_at"]) else f"last call {_day(row['last_call_at'])}")
    ),
))
