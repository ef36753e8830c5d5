"""The finance review of one month, apart from the invoice check: inventory movement,
recurring cost by dimension, and the month-over-month view.

Holdings come from each number's purchase and release times (the version history's
latest word on them), so a month before the first sync run is still described, as
far as the listings reach (released numbers are listed for 400 days).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import compress
from typing import Any

import pandas as pd

from reconcile.analysis.billing import NumberFacts, price_at
from reconcile.analysis.focus import FocusExport
from reconcile.analysis.invoices import Reconciliation
from reconcile.analysis.nightly import CurrencyTotal, counted_totals, totals_by_currency
from reconcile.money import format_billed
from reconcile.period import Period

DIMENSIONS = (("country_code", "Country"), ("phone_number_type", "Type"), ("provider", "Provider"), ("agent", "Agent"))
ZERO = Decimal(0)


@dataclass
class Movement:
    opening: int
    closing: int
    bought: pd.DataFrame
    released: pd.DataFrame


@dataclass
class MonthRow:
    period: Period
    closing: int
    bought: int
    released: int
    recurring: list[CurrencyTotal]
    invoiced: list[CurrencyTotal]


def holdings(latest: pd.DataFrame, at: dt.datetime) -> pd.Series:
    """Which numbers were owned at `at` (bought at or before it, not yet released)."""
    released = latest["released_at"]
    return (latest["purchased_at"] <= at) & (released.isna() | (released > at))


def movement(latest: pd.DataFrame, period: Period) -> Movement:
    bought = latest[(latest["purchased_at"] >= period.start) & (latest["purchased_at"] < period.end)]
    released = latest[latest["released_at"].notna() & (latest["released_at"] >= period.start)
                      & (latest["released_at"] < period.end)]
    return Movement(int(holdings(latest, period.start).sum()), int(holdings(latest, period.end).sum()),
                    bought.sort_values(["purchased_at", "number_id"]), released.sort_values(["released_at", "number_id"]))


@dataclass
class Prices:
    """Each number's Truedy monthly price, per row of a frame of numbers, at any time: worked out once.

    Most numbers were seen at one price only; the few seen at several are looked up per time.
    """

    fixed: list[Decimal | None]        # per row: the one price (None when imported, unpriced or several)
    varying: dict[int, NumberFacts]    # row -> facts, for the numbers seen at several prices

    @classmethod
    def of(cls, frame: pd.DataFrame, facts: dict[str, NumberFacts]) -> Prices:
        fixed: list[Decimal | None] = []
        varying: dict[int, NumberFacts] = {}
        for row, number_id in enumerate(frame["number_id"].tolist()):
            number = facts.get(number_id)
            if number is None or not number.is_truedy_managed or not number.prices:
                fixed.append(None)
            elif len(number.prices) == 1:
                fixed.append(number.prices[0].monthly_cost)
            else:
                fixed.append(None)
                varying[row] = number
        return cls(fixed, varying)

    def at(self, when: dt.datetime) -> list[Decimal | None]:
        """Per row, the price in force at `when` (None for imported numbers)."""
        costs = self.fixed.copy()
        for row, number in self.varying.items():
            costs[row] = price_at(number.prices, when)[0]
        return costs


def with_cost_at(latest: pd.DataFrame, prices: Prices, at: dt.datetime,
                 agent_names: dict[str, str] | None = None) -> pd.DataFrame:
    """The numbers held at `at`, with the monthly price in force then (and their agent, given names).
    `prices`: `Prices.of(latest, facts)`."""
    owned = holdings(latest, at)
    held = latest[owned].copy()
    held["cost_at"] = pd.Series(list(compress(prices.at(at), owned.tolist())), index=held.index, dtype=object)
    if agent_names is not None:
        agent = held["inbound_agent_id"].fillna(held["outbound_agent_id"]).tolist()
        held["agent"] = [f"{agent_names.get(a, 'unknown agent')} ({a})" if isinstance(a, str) else "(unassigned)"
                         for a in agent]
    return held


def recurring_by(held: pd.DataFrame, key: str) -> list[dict[str, Any]]:
    """Per value of `key`: numbers, and the Truedy monthly cost per currency (each distinct row counted once)."""
    numbers: dict[str, int] = defaultdict(int)
    costs: dict[str, list[tuple[tuple[Any, Any], int]]] = defaultdict(list)
    for (value, cost, currency), count in Counter(zip(held[key].tolist(), held["cost_at"].tolist(),
                                                      held["currency"].tolist(), strict=True)).items():
        name = value if isinstance(value, str) else "(none)"
        numbers[name] += count
        costs[name].append(((cost, currency), count))
    rows = [{"key": name, "numbers": numbers[name], "cost": counted_totals(costs[name])} for name in numbers]
    return sorted(rows, key=lambda r: (-r["numbers"], r["key"]))


def estimated_carrier_cost(held: pd.DataFrame, estimates: dict[str, tuple[Decimal | None, str]]) -> list[dict[str, Any]]:
    """Imported numbers held, per provider, with the configured estimate (None when not configured)."""
    imported = held[~held["is_truedy_managed"].astype(bool)]
    rows = []
    for provider, group in imported.groupby("provider", sort=True):
        amount, currency = estimates.get(str(provider), (None, ""))
        rows.append({"provider": provider, "numbers": len(group),
                     "estimate": None if amount is None else CurrencyTotal(currency, amount * len(group), len(group))})
    return rows


def month_rows(latest: pd.DataFrame, prices: Prices, headers: pd.DataFrame, period: Period,
               held: pd.DataFrame, moved: Movement, months: int = 6) -> list[MonthRow]:
    """The review's month (its `held` numbers and movement already worked out) and the ones before it, oldest first.
    `prices`: `Prices.of(latest, facts)`."""
    rows = []
    currencies = latest["currency"].tolist()
    for back in range(months - 1, -1, -1):
        month = period.shifted(-back)
        if back == 0:
            m, recurring = moved, totals_by_currency(held["cost_at"].tolist(), held["currency"].tolist())
        else:  # the numbers held at the month's end, at the prices then
            owned = holdings(latest, month.end).tolist()
            m, recurring = movement(latest, month), totals_by_currency(
                compress(prices.at(month.end), owned), compress(currencies, owned))
        invoiced = headers[headers["period_start"] == month.first] if len(headers) else headers
        rows.append(MonthRow(month, m.closing, len(m.bought), len(m.released), recurring,
                             totals_by_currency(invoiced["total"], invoiced["currency"]) if len(invoiced) else []))
    return rows


def top_rows(rows: list[dict[str, Any]], limit: int, others: str) -> list[dict[str, Any]]:
    """The first `limit` rows of a breakdown, and one row that sums the rest."""
    if len(rows) <= limit:
        return rows
    rest = rows[limit:]
    amounts = [t.amount for r in rest for t in r["cost"]]
    currencies = [t.currency for r in rest for t in r["cost"]]
    return rows[:limit] + [{"key": f"{len(rest):,} {others}", "numbers": sum(r["numbers"] for r in rest),
                            "cost": totals_by_currency(amounts, currencies)}]


def number_tags(latest: pd.DataFrame, agent_names: dict[str, str]) -> dict[str, dict[str, str]]:
    """Per number, the tags a cost export carries: country, type, label and agent."""
    tags = {}
    for number_id, country, kind, label, inbound, outbound in zip(
            latest["number_id"].tolist(), latest["country_code"].tolist(), latest["phone_number_type"].tolist(),
            latest["label"].tolist(), latest["inbound_agent_id"].tolist(), latest["outbound_agent_id"].tolist(),
            strict=True):
        agent = inbound if isinstance(inbound, str) else outbound if isinstance(outbound, str) else None
        tags[number_id] = {"country": country, "number_type": kind, "label": label if isinstance(label, str) else "",
                           "agent_id": agent or "", "agent": agent_names.get(agent or "", "")}
    return tags


@dataclass
class MonthlyReview:
    period: Period
    generated_at: dt.datetime
    movement: Movement
    recurring: dict[str, list[dict[str, Any]]]
    recurring_total: list[CurrencyTotal]
    estimates: list[dict[str, Any]]
    waste: list[CurrencyTotal]
    waste_as_of: dt.datetime | None
    realised: list[CurrencyTotal]
    realised_numbers: pd.DataFrame
    months: list[MonthRow]
    reconciliation: Reconciliation
    invoices: pd.DataFrame
    invoice_issues: pd.DataFrame
    focus: FocusExport
    newest_run: dt.datetime | None
    plan_releases: list[dict[str, Any]] = field(default_factory=list)   # numbers release plans released this month
    plan_realised: list[CurrencyTotal] = field(default_factory=list)     # their monthly fees, per currency

    @property
    def headline(self) -> str:
        r = self.reconciliation
        missing = r.findings[r.findings["issue"] == "missing_invoice"] if len(r.findings) else r.findings
        if not len(self.invoices) and not len(missing):
            return f"no Truedy invoice for {self.period}, and no fee was expected"
        if not len(self.invoices):
            expected = ", ".join(f"{format_billed(a, c)} {c}" for a, c in zip(missing["expected_amount"],
                                                                                missing["currency"], strict=True))
            return f"the invoice is missing: Truedy lists none for {self.period}, yet {expected} were expected"
        if r.clean:
            return "invoice matches inventory"
        differences = ", ".join(f"{'+' if c.difference > 0 else ''}{format_billed(c.difference, c.currency)} {c.currency}"
                                for c in r.checks if c.findings)
        return f"{len(r.findings):,} finding(s); billed minus expected: {differences}"
