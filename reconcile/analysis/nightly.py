"""The nightly summary, computed from frames: headline totals, changes, breakdowns, trend. Pure.

Money is summed per currency as Decimal, never across currencies. Every total here
is a sum over the same rows the CSVs hold, so the page and the files agree to the cent.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import compress
from typing import Any

import pandas as pd

from reconcile.analysis.agents import by_agent
from reconcile.analysis.flags import FlagResult
from reconcile.analysis.frames import texts


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    amount: Decimal
    count: int


def totals_by_currency(amounts: Iterable[Any], currencies: Iterable[Any]) -> list[CurrencyTotal]:
    """Sum Decimal amounts per currency; blanks are left out (count them separately).

    An account has a few prices among its many numbers: each distinct (amount, currency) is
    counted (`Counter`, at C speed), then multiplied by its count: exact, as adding it that
    many times. Equal amounts count as one (the store's are normalised: one spelling each).
    """
    if isinstance(amounts, pd.Series):
        amounts = amounts.tolist()
    if isinstance(currencies, pd.Series):
        currencies = texts(currencies)
    return counted_totals(Counter(zip(amounts, currencies, strict=True)).items())


def counted_totals(counted: Iterable[tuple[tuple[Any, Any], int]]) -> list[CurrencyTotal]:
    """Per currency, the sum of ((amount, currency), count) pairs: amount times count (see `totals_by_currency`)."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    counts: dict[str, int] = defaultdict(int)
    for (amount, currency), count in counted:
        if isinstance(amount, Decimal) and isinstance(currency, str):
            sums[currency] += amount * count
            counts[currency] += count
    return [CurrencyTotal(c, sums[c], counts[c]) for c in sorted(sums)]


@dataclass
class Changes:
    bought: pd.DataFrame
    released: pd.DataFrame
    reassigned: pd.DataFrame
    newly_flagged: pd.DataFrame
    resolved: pd.DataFrame

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in ("bought", "released", "reassigned", "newly_flagged", "resolved")}


@dataclass
class NightlySummary:
    as_of: dt.datetime
    run_id: int
    previous_as_of: dt.datetime | None
    owned: int
    pending: int
    imported: int
    monthly_cost: list[CurrencyTotal]
    flagged: int
    savings: list[CurrencyTotal]
    savings_estimated: list[CurrencyTotal]
    savings_truedy: list[CurrencyTotal]   # Truedy fees only (the carrier estimates are apart)
    savings_unknown: int
    by_flag: list[dict[str, Any]]
    protected: int
    data_issues: pd.DataFrame
    changes: Changes
    by_agent: pd.DataFrame
    by_country: pd.DataFrame
    trend: pd.DataFrame
    realised: list[CurrencyTotal] = field(default_factory=list)
    unrouted: list[str] = field(default_factory=list)   # phone numbers of flagged numbers no digest reaches


def changes_between(previous: pd.DataFrame | None, current: pd.DataFrame, events: pd.DataFrame,
                    run_id: int, previous_run_id: int | None = None) -> Changes:
    """What moved since the previous run, and which flag streaks began or ended at `run_id`.

    `current` is the inventory at `run_id` (its live numbers are enough; other statuses are
    ignored); `previous` holds the previous run's versions, with their `valid_to_run`, of at least
    every number whose version changed since (`readers.changed_since`; the whole previous inventory
    works too, it is just more to read). A number whose version was opened after the previous run
    and that had no version then was bought.
    """
    live = current[current["status"].isin(["active", "pending"])]
    if previous is None or previous_run_id is None:
        bought, released, reassigned = live, current.iloc[0:0], current.iloc[0:0]
    else:
        before = previous.set_index("number_id")
        was_live = before.index[before["status"].isin(["active", "pending"])]
        # a number whose version changed since the previous run has a version opened since: only those
        # few hundred rows are looked up, not every live number
        recent = live[live["valid_from_run"] > previous_run_id]
        bought = recent[~recent["number_id"].isin(before.index)]
        closed = previous["valid_to_run"].notna() & (previous["valid_to_run"] <= run_id)  # still open: held as it was
        released = previous[previous["number_id"].isin(was_live) & closed & ~previous["number_id"].isin(recent["number_id"])]
        both = recent[recent["number_id"].isin(was_live)].set_index("number_id")
        old = before.loc[both.index]
        moved = pd.Series(False, index=both.index)
        for column in ("inbound_agent_id", "outbound_agent_id"):
            moved |= both[column].fillna("") != old[column].fillna("")
        reassigned = both[moved].reset_index()
    if len(events):
        newly_flagged = events[events["first_flagged_run"] == run_id]
        resolved = events[events["resolved_run"] == run_id]
    else:
        newly_flagged = resolved = events
    return Changes(bought=bought, released=released, reassigned=reassigned,
                   newly_flagged=newly_flagged, resolved=resolved)


def breakdown(frame: pd.DataFrame, keys: list[Any], label: str) -> pd.DataFrame:
    """Numbers, flagged numbers, monthly cost and savings per key (one per row of `frame`; blank is
    "(none)"), money per currency: each distinct (key, amount, currency) counted once (see `totals_by_currency`).

    Everything is counted by `Counter` over the columns (the flagged rows picked by `compress`), at C
    speed; Python then walks only the distinct keys and prices.
    """
    keys = ["(none)" if not isinstance(k, str) else k for k in keys]
    flags = frame["flag"].tolist()  # '' (false) when not flagged
    currencies = texts(frame["currency"])
    numbers = Counter(keys)
    flagged = Counter(compress(keys, flags))
    cost: dict[str, list[tuple[tuple[Any, Any], int]]] = defaultdict(list)    # key -> ((amount, currency), count)
    for (k, amount, currency), count in Counter(zip(keys, frame["monthly_cost"].tolist(), currencies,
                                                    strict=True)).items():
        cost[k].append(((amount, currency), count))
    saving: dict[str, list[tuple[tuple[Any, Any], int]]] = defaultdict(list)
    savings = frame["monthly_savings"].tolist()
    for (k, amount, currency), count in Counter(zip(compress(keys, flags), compress(savings, flags),
                                                    compress(currencies, flags), strict=True)).items():
        saving[k].append(((amount, currency), count))
    rows = [{label: k, "numbers": numbers[k], "flagged": flagged[k], "monthly_cost": counted_totals(cost[k]),
             "savings": counted_totals(saving[k])} for k in sorted(numbers)]
    return pd.DataFrame(rows, columns=[label, "numbers", "flagged", "monthly_cost", "savings"])


def summarise(
    result: FlagResult, run_id: int, previous_as_of: dt.datetime | None, changes: Changes, agents: pd.DataFrame,
    data_issues: pd.DataFrame, trend: pd.DataFrame, realised: pd.DataFrame | None = None,
) -> NightlySummary:
    inventory = result.inventory
    flagged = result.flagged
    names = by_agent(agents, "name")
    agent_ids = inventory["inbound_agent_id"].fillna(inventory["outbound_agent_id"]).tolist()
    shown = {a: f"{names.get(a, 'unknown agent')} ({a})" for a in set(agent_ids) if isinstance(a, str)}
    agent_keys = list(map(shown.get, agent_ids))  # a blank (NaN) is no key: None, looked up in C
    by_flag = []
    for name, group in flagged.groupby("flag", sort=True):
        by_flag.append({"flag": name, "count": len(group),
                        "savings": totals_by_currency(group["monthly_savings"], group["currency"])})
    estimated = flagged[flagged["savings_basis"] == "carrier_estimate"]
    fees = flagged[flagged["savings_basis"] == "truedy_fee"]
    return NightlySummary(
        as_of=result.as_of,
        run_id=run_id,
        previous_as_of=previous_as_of,
        owned=len(inventory),
        pending=int((inventory["status"] == "pending").sum()),
        imported=int((~inventory["is_truedy_managed"].astype(bool)).sum()),
        monthly_cost=totals_by_currency(inventory["monthly_cost"], inventory["currency"]),
        flagged=len(flagged),
        savings=totals_by_currency(flagged["monthly_savings"], flagged["currency"]),
        savings_estimated=totals_by_currency(estimated["monthly_savings"], estimated["currency"]),
        savings_truedy=totals_by_currency(fees["monthly_savings"], fees["currency"]),
        savings_unknown=int((flagged["savings_basis"] == "unknown").sum()),
        by_flag=by_flag,
        protected=result.protected_count,
        data_issues=data_issues,
        changes=changes,
        by_agent=breakdown(inventory, agent_keys, "agent"),
        by_country=breakdown(inventory, inventory["country_code"].tolist(), "country"),
        trend=trend,
        realised=totals_by_currency(realised["monthly_savings"], realised["currency"]) if realised is not None else [],
    )
