"""Evaluate the waste flags over an inventory as of a time. Pure: frames and as_of in, frames out.

Inputs are what the store's readers return: the inventory (number versions, active
and pending), the agents and the last call per number, all as of the same run.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from itertools import compress
from typing import Any

import pandas as pd

from reconcile.analysis.agents import by_agent
from reconcile.analysis.frames import texts
from reconcile.analysis.rules import RULES
from reconcile.config.settings import CarrierCost, FlagSettings

FLAGGED_COLUMNS = [
    "number_id", "phone_number", "label", "country_code", "phone_number_type", "provider",
    "is_truedy_managed", "monthly_cost", "currency", "inbound_agent_id", "outbound_agent_id",
    "purchased_at", "last_call_at", "idle_days", "flag", "reason", "recommended_action",
    "monthly_savings", "first_flagged_at",
]
INVENTORY_COLUMNS = FLAGGED_COLUMNS[:14] + ["status", "flag", "protected", "monthly_savings"]


@dataclass
class FlagResult:
    inventory: pd.DataFrame      # every active/pending number, enriched, with `flag` ('' when none)
    flagged: pd.DataFrame        # one row per flagged number, FLAGGED_COLUMNS + savings_basis
    protected_count: int
    as_of: dt.datetime


def enrich(inventory: pd.DataFrame, agents: pd.DataFrame, last_calls: pd.DataFrame, as_of: dt.datetime,
           settings: FlagSettings) -> pd.DataFrame:
    """The inventory with what the rules need: agent states, last activity, idle days, protection.

    What only a reason says (`agents_texts`) is made for the flagged rows alone.
    """
    frame = inventory.copy(deep=False)  # new columns go on this frame only; copy-on-write guards the data
    status = by_agent(agents, "status")
    names = by_agent(agents, "name")
    for direction in ("inbound", "outbound"):
        frame[f"{direction}_agent_status"] = frame[f"{direction}_agent_id"].map(status)
        frame[f"{direction}_agent_name"] = frame[f"{direction}_agent_id"].map(names)
    frame["has_assignment"] = frame["inbound_agent_id"].notna() | frame["outbound_agent_id"].notna()
    frame["has_active_agent"] = (frame["inbound_agent_status"] == "active") | (frame["outbound_agent_status"] == "active")
    last = last_calls.set_index("number_id")["last_call_at"] if len(last_calls) else pd.Series(dtype=object)
    frame["last_call_at"] = pd.to_datetime(frame["number_id"].map(last), utc=True)
    for column in ("purchased_at", "inbound_assigned_at", "outbound_assigned_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    activity = frame[["last_call_at", "inbound_assigned_at", "outbound_assigned_at", "purchased_at"]]
    frame["last_activity_at"] = activity.max(axis=1)
    now = pd.Timestamp(as_of)
    frame["idle_days"] = (now - frame["last_activity_at"]).dt.days.astype("int64")
    frame["age_days"] = (now - frame["purchased_at"]).dt.days.astype("int64")
    frame["past_grace"] = frame["purchased_at"] <= now - pd.Timedelta(days=settings.grace_days)
    protected = frame["number_id"].isin(settings.protect_number_ids)
    if settings.protect_label_pattern:
        labels = frame["label"].fillna("").astype(str)
        pattern = re.compile(settings.protect_label_pattern)  # a user's groups are fine: only a match counts
        protected |= labels.map(lambda label: pattern.search(label) is not None).astype(bool)
    frame["protected"] = protected.astype(bool)
    return frame


def agents_texts(frame: pd.DataFrame, agents: pd.DataFrame) -> list[str]:
    """Per row, its agents as a reason says them ("active agent 'Sales'"); '' when it has none."""
    status, names = by_agent(agents, "status"), by_agent(agents, "name")
    # pairs repeat: each written once (blanks as None: each NaN would be a pair of its own)
    pairs = list(zip(texts(frame["inbound_agent_id"]), texts(frame["outbound_agent_id"]), strict=True))
    written = {pair: _agents_text(pair, names, status) for pair in set(pairs)}
    return [written[pair] for pair in pairs]


def _agents_text(row: tuple[Any, ...], names: Mapping[str, str], status: Mapping[str, str]) -> str:
    parts = []
    for agent_id in dict.fromkeys(a for a in row if isinstance(a, str)):
        if agent_id not in status:
            parts.append(f"unknown agent {agent_id}")
        else:
            parts.append(f"{status[agent_id]} agent {names[agent_id]!r}")
    return " and ".join(parts)


def savings(frame: pd.DataFrame, carrier_costs: Mapping[str, CarrierCost]) -> pd.DataFrame:
    """Monthly saving per number, its currency and its basis (Truedy fee, carrier estimate, unknown)."""
    # a Truedy number saves its own fee: the rows as they are; only the imported ones are looked at
    amounts, currencies = frame["monthly_cost"].tolist(), frame["currency"].tolist()
    basis = ["truedy_fee"] * len(frame)
    providers = frame["provider"].tolist()
    for row in compress(range(len(frame)), [not managed for managed in frame["is_truedy_managed"].tolist()]):
        carrier = carrier_costs.get(providers[row])
        if carrier is not None and carrier.amount is not None:
            amounts[row], currencies[row], basis[row] = carrier.amount, carrier.currency, "carrier_estimate"
        else:
            amounts[row], currencies[row], basis[row] = None, None, "unknown"
    return pd.DataFrame({"monthly_savings": amounts, "savings_currency": currencies, "savings_basis": basis},
                        index=frame.index)


def evaluate_flags(
    inventory: pd.DataFrame, agents: pd.DataFrame, last_calls: pd.DataFrame, as_of: dt.datetime,
    settings: FlagSettings, carrier_costs: Mapping[str, CarrierCost],
    first_flagged: Mapping[str, dt.datetime] | None = None,
) -> FlagResult:
    """Which numbers are flagged, why, since when, and what releasing each saves a month.

    `first_flagged`: number_id -> when its open flag streak began (the flag history);
    a flagged number not in it is flagged for the first time, as of `as_of`.
    """
    live = inventory[inventory["status"].isin(["active", "pending"])]
    frame = enrich(live, agents, last_calls, as_of, settings)
    frame["flag"] = ""
    for name in settings.enabled_rules:
        mask = RULES[name].evaluate(frame, settings) & ~frame["protected"] & (frame["flag"] == "")
        frame.loc[mask, "flag"] = name
    frame = pd.concat([frame, savings(frame, carrier_costs)], axis=1)
    # money columns: imported numbers show their carrier currency beside the estimate
    frame["currency"] = frame["currency"].where(frame["is_truedy_managed"], frame["savings_currency"])
    flagged = frame[frame["flag"] != ""].copy()
    flagged["agents_text"] = agents_texts(flagged, agents)
    flagged["reason"] = reasons(flagged, settings)
    flagged["recommended_action"] = flagged["flag"].map(lambda name: RULES[name].recommended_action)
    since = first_flagged or {}
    flagged["first_flagged_at"] = [since.get(number_id, as_of) for number_id in flagged["number_id"].tolist()]
    flagged = flagged.sort_values(["flag", "monthly_savings", "number_id"], key=_sort_key, ascending=[True, False, True])
    frame["monthly_savings"] = frame["monthly_savings"].where(frame["flag"] != "", None)
    return FlagResult(
        inventory=(frame if frame["number_id"].is_monotonic_increasing  # as the store reads it: no copy to sort
                   else frame.sort_values("number_id")).reset_index(drop=True),
        flagged=flagged.reset_index(drop=True),
        protected_count=int(frame["protected"].sum()),
        as_of=as_of,
    )


REASON_COLUMNS = ["flag", "purchased_at", "age_days", "agents_text", "idle_days", "last_call_at"]


def reasons(flagged: pd.DataFrame, settings: FlagSettings) -> list[str]:
    """Each flagged row's reason, as its rule explains it (times as UTC datetimes, None when unknown)."""
    columns = [_utc_datetimes(flagged[name]) if pd.api.types.is_datetime64_any_dtype(flagged[name])
               else flagged[name].tolist() for name in REASON_COLUMNS]
    return [RULES[str(row["flag"])].explain(row, settings)
            for row in (dict(zip(REASON_COLUMNS, values, strict=True)) for values in zip(*columns, strict=True))]


def _utc_datetimes(column: pd.Series) -> list[dt.datetime | None]:
    """A UTC time column as datetimes, NaT as None (numpy converts: no Timestamp per value)."""
    naive = column.dt.tz_convert("UTC").dt.tz_localize(None) if column.dt.tz is not None else column
    return [None if value is None else value.replace(tzinfo=dt.UTC)
            for value in naive.to_numpy(dtype="datetime64[us]").astype(object).tolist()]


def _sort_key(column: pd.Series) -> pd.Series:
    if column.name == "monthly_savings":
        return column.map(lambda value: value if isinstance(value, Decimal) else Decimal(-1))
    return column
