"""Waste flags as rules registered by name.

Each rule is one small unit: a name, the action it recommends, `evaluate(frame,
flag_settings) -> mask` over the enriched inventory (see
`reconcile.analysis.flags.enrich`), the reason shown for a flagged row, and how a
streak of its flag ends when the number is flagged no more. Rules are mutually
exclusive by construction; config switches them on and off (`flags.enabled_rules`)
and tunes their parameters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from reconcile.config.settings import FlagSettings

Row = Mapping[str, Any]
NO_LONGER_FLAGGED = "no_longer_flagged"


@dataclass(frozen=True)
class Rule:
    name: str
    recommended_action: str
    evaluate: Callable[[pd.DataFrame, FlagSettings], pd.Series]
    explain: Callable[[Row, FlagSettings], str]
    resolved: Callable[[Row, FlagSettings], str]  # why a number this rule flagged is flagged no more


RULES: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    if rule.name in RULES:
        raise ValueError(f"rule {rule.name!r} registered twice")
    RULES[rule.name] = rule
    return rule


def _day(value: object) -> str:
    # pandas' NaT is a datetime too, and the one never equal to itself
    return value.isoformat()[:10] if isinstance(value, dt.date) and value == value else "?"


def _assigned(row: Row, settings: FlagSettings) -> str:
    return "assigned" if bool(row["has_active_agent"]) else NO_LONGER_FLAGGED


register(Rule(
    name="unassigned",
    recommended_action="release, or assign it to an agent",
    evaluate=lambda f, p: ~f["has_assignment"] & f["past_grace"],
    explain=lambda row, p: f"no agent assigned; bought {_day(row['purchased_at'])} ({row['age_days']} days ago)",
    resolved=_assigned,
))

register(Rule(
    name="orphaned_agent",
    recommended_action="release, or move it to an active agent",
    evaluate=lambda f, p: f["has_assignment"] & ~f["has_active_agent"] & f["past_grace"],
    explain=lambda row, p: f"assigned only to {row['agents_text']}, none of them active",
    resolved=_assigned,
))

register(Rule(
    name="idle",
    recommended_action="release, unless it is kept on purpose (then protect it)",
    evaluate=lambda f, p: f["has_active_agent"] & (f["idle_days"] >= p.idle_days_threshold),
    explain=lambda row, p: (
        f"no activity for {row['idle_days']} days (threshold {p.idle_days_threshold}); "
        + ("never called" if pd.isna(row["last_call_at"]) else f"last call {_day(row['last_call_at'])}")
    ),
    resolved=lambda row, p: "used_again" if int(row["idle_days"]) < p.idle_days_threshold else NO_LONGER_FLAGGED,
))
