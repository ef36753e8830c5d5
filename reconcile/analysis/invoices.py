"""Invoice reconciliation: the fees and usage a month should hold against what its invoices hold.

Pure: the store's facts in, findings and per-currency checks out. One finding per line
that is wrong (or per fee that is missing), with expected, billed and their difference
(billed - expected), exact and per currency. Kinds, from DESIGN.md:

- fee_after_release        a fee for a renewal that starts after the number's release
- missing_fee              a fee the rules call for that no line carries
- amount_mismatch          billed differs from the price in force at the renewal
- duplicate_fee            a second line for the same number, fee type and service period
- fee_for_imported_number  a Truedy fee for a number its carrier bills
- unknown_number           a fee for a number the API does not know
- usage_mismatch           a call_usage line that differs from the number's calls that month
- unexpected_fee           (beyond DESIGN) a fee for a known, held number on no renewal day
- total_mismatch           (beyond DESIGN) an invoice total that is not the sum of its lines
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd

from reconcile.analysis.billing import FEE_TYPES, ExpectedFee, NumberFacts, expected_fees
from reconcile.money import format_amount
from reconcile.period import Period, midnight

FINDING_COLUMNS = [
    "invoice_id", "line_item_id", "number_id", "phone_number", "issue", "expected_amount", "billed_amount",
    "difference", "currency", "service_period_start", "service_period_end", "detail",
]
ISSUES = (
    "fee_after_release", "missing_fee", "amount_mismatch", "duplicate_fee", "fee_for_imported_number",
    "unknown_number", "usage_mismatch", "unexpected_fee", "total_mismatch",
)
USAGE = "call_usage"
ZERO = Decimal(0)

Usage = dict[tuple[str | None, str], tuple[Decimal, int, int]]  # (number_id, currency) -> (cost, calls, minutes)


@dataclass
class CurrencyCheck:
    """The figures that prove (or disprove) one currency's invoices for the month."""

    currency: str
    invoice_ids: list[str] = field(default_factory=list)
    invoice_total: Decimal = ZERO
    lines_total: Decimal = ZERO
    expected_fees: int = 0
    expected_fees_amount: Decimal = ZERO
    billed_fees: int = 0
    billed_fees_amount: Decimal = ZERO
    expected_usage: Decimal = ZERO
    usage_calls: int = 0
    billed_usage: Decimal = ZERO
    other_lines: Decimal = ZERO          # subscription, credits, adjustments: not checked against inventory
    findings: int = 0
    difference: Decimal = ZERO

    @property
    def clean(self) -> bool:
        return self.findings == 0


@dataclass
class Reconciliation:
    period: Period
    findings: pd.DataFrame
    checks: list[CurrencyCheck]
    usage_checked: bool
    usage_note: str

    @property
    def clean(self) -> bool:
        return len(self.findings) == 0

    def counts(self) -> dict[str, int]:
        return self.findings["issue"].value_counts().to_dict() if len(self.findings) else {}


def reconcile_invoices(
    period: Period, headers: pd.DataFrame, lines: pd.DataFrame, numbers: dict[str, NumberFacts],
    usage: Usage | None, usage_note: str = "",
) -> Reconciliation:
    """Compare the period's invoices (`headers`, `lines`) with what the rules and the calls say."""
    checks: dict[str, CurrencyCheck] = {}

    def check(currency: str) -> CurrencyCheck:
        return checks.setdefault(currency, CurrencyCheck(currency))

    invoice_of: dict[str, str] = {}
    for row in headers.itertuples(index=False):
        c = check(row.currency)
        c.invoice_ids.append(row.invoice_id)
        c.invoice_total += row.total
        invoice_of.setdefault(row.currency, row.invoice_id)
    findings: list[dict[str, Any]] = []

    def finding(issue: str, line: Any | None, expected: Decimal, billed: Decimal, currency: str, detail: str,
                fee: ExpectedFee | None = None, number_id: str | None = None, phone: str | None = None,
                invoice_id: str | None = None) -> None:
        source = fee or line
        number_id = number_id if number_id is not None else getattr(source, "number_id", None)
        phone = phone or getattr(source, "phone_number", None)
        if not phone and number_id in numbers:
            phone = numbers[number_id].phone_number
        findings.append({
            "invoice_id": invoice_id or (line.invoice_id if line is not None else invoice_of.get(currency, "")),
            "line_item_id": line.line_item_id if line is not None else None,
            "number_id": number_id, "phone_number": phone,
            "issue": issue, "expected_amount": expected, "billed_amount": billed, "difference": billed - expected,
            "currency": currency,
            "service_period_start": getattr(source, "service_period_start", period.first),
            "service_period_end": getattr(source, "service_period_end", period.after),
            "detail": detail,
        })

    # totals: each invoice's lines must add up to its total
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for invoice_id, amount in zip(lines["invoice_id"], lines["amount"], strict=True):
        sums[invoice_id] += amount
    for row in headers.itertuples(index=False):
        lines_total = sums.get(row.invoice_id, ZERO)
        check(row.currency).lines_total += lines_total
        if lines_total != row.total:
            finding("total_mismatch", None, lines_total, row.total, row.currency,
                    "the invoice total is not the sum of its lines", invoice_id=row.invoice_id)

    # number fees
    expected = [fee for number in numbers.values() for fee in expected_fees(number, period)]
    by_key = {(f.number_id, f.type, f.service_period_start): f for f in expected}
    matched: dict[tuple[str, str, dt.date], Decimal] = {}  # key -> the expected amount it was held to
    unexpected_seen: set[tuple[str | None, str, dt.date]] = set()
    fee_lines = lines[lines["type"].isin(FEE_TYPES)]
    for line in fee_lines.itertuples(index=False):
        c = check(line.currency)
        c.billed_fees += 1
        c.billed_fees_amount += line.amount
        key = (line.number_id, line.type, line.service_period_start)
        fee = by_key.get(key)  # type: ignore[arg-type]
        if fee is not None and key not in matched:
            # a price that could have been in force (see billing.price_at) is the expected one
            matched[key] = line.amount if line.amount in fee.accepted else fee.amount  # type: ignore[index]
            if line.currency != fee.currency:
                finding("amount_mismatch", line, fee.amount, line.amount, line.currency,
                        f"billed in {line.currency}; the number is priced in {fee.currency}")
            elif line.amount not in fee.accepted:
                finding("amount_mismatch", line, fee.amount, line.amount, line.currency,
                        _price_detail(fee, line.currency))
            continue
        if fee is not None or key in unexpected_seen:
            finding("duplicate_fee", line, ZERO, line.amount, line.currency,
                    f"a second {_fee_name(line.type)} for the same number and service period")
            continue
        unexpected_seen.add(key)
        facts = numbers.get(line.number_id) if line.number_id else None
        finding(*_unexpected(line, facts))
    for fee in expected:
        c = check(fee.currency)
        c.expected_fees += 1
        c.expected_fees_amount += matched.get((fee.number_id, fee.type, fee.service_period_start), fee.amount)
        if (fee.number_id, fee.type, fee.service_period_start) not in matched:
            finding("missing_fee", None, fee.amount, ZERO, fee.currency,
                    f"no {_fee_name(fee.type)} for the period starting {fee.service_period_start}", fee=fee)

    # call usage
    usage_lines = lines[lines["type"] == USAGE]
    billed: dict[tuple[str | None, str], list[Any]] = defaultdict(list)
    for line in usage_lines.itertuples(index=False):
        billed[(line.number_id, line.currency)].append(line)
        check(line.currency).billed_usage += line.amount
    if usage is not None:
        for (_number, currency), (cost, count, _minutes) in usage.items():
            c = check(currency)
            c.expected_usage += cost
            c.usage_calls += count
        for key in sorted(set(billed) | {k for k, v in usage.items() if v[0] != ZERO}, key=_usage_order):
            number_id, currency = key
            cost, count, minutes = usage.get(key, (ZERO, 0, 0))
            items = billed.get(key, [])
            total = sum((i.amount for i in items), ZERO)
            if total == cost:
                continue
            first = items[0] if items else None
            finding("usage_mismatch", first, cost, total, currency,
                    f"{count} call(s), {minutes} billed minute(s) in the store cost {format_amount(cost, currency)} {currency}"
                    + ("" if items else "; no call_usage line"), number_id=number_id or "")
    other = lines[~lines["type"].isin((*FEE_TYPES, USAGE))]
    for currency, amount in zip(other["currency"], other["amount"], strict=True):
        check(currency).other_lines += amount

    frame = pd.DataFrame(findings, columns=FINDING_COLUMNS)
    if len(frame):
        frame["_order"] = frame["issue"].map(ISSUES.index)
        frame = (frame.sort_values(["currency", "_order", "number_id", "invoice_id"], kind="stable", na_position="first")
                 .drop(columns="_order").reset_index(drop=True))
    for currency, group in frame.groupby("currency"):
        check(str(currency)).findings = len(group)
        check(str(currency)).difference = sum(group["difference"], ZERO)
    ordered = [checks[c] for c in sorted(checks)]
    return Reconciliation(period, frame, ordered, usage is not None, usage_note)


def _usage_order(key: tuple[str | None, str]) -> tuple[str, str]:
    return key[1], key[0] or ""


def _fee_name(kind: str) -> str:
    return "monthly fee" if kind == "number_monthly_fee" else "purchase fee"


def _price_detail(fee: ExpectedFee, currency: str) -> str:
    prices = " or ".join(format_amount(a, currency) for a in fee.accepted)
    return f"the price in force on {fee.service_period_start} is {prices} {currency}"


def _unexpected(line: Any, facts: NumberFacts | None) -> tuple[Any, ...]:
    """Why a fee line matches no expected fee: (issue, line, expected, billed, currency, detail)."""
    if line.number_id is None or facts is None:
        return ("unknown_number", line, ZERO, line.amount, line.currency,
                "the Truedy API does not know this number (not listed, not found by id)")
    if not facts.is_truedy_managed:
        return ("fee_for_imported_number", line, ZERO, line.amount, line.currency,
                f"imported from {facts.provider}: its carrier bills it, Truedy charges no number fee")
    if facts.released_at is not None and midnight(line.service_period_start) >= facts.released_at:
        return ("fee_after_release", line, ZERO, line.amount, line.currency,
                f"released {facts.released_at:%Y-%m-%d %H:%M}Z, before this service period began")
    bought = facts.purchased_at.astimezone(dt.UTC).date()
    return ("unexpected_fee", line, ZERO, line.amount, line.currency,
            f"no {_fee_name(line.type)} is due on {line.service_period_start} for a number bought {bought}")
