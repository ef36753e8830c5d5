"""Invoice reconciliation: the fees and usage a month should hold against what its invoices hold.

Pure: the store's facts in, findings and per-currency figures out. Each kind of finding
is a check registered by name (`CHECKS`), in the order findings are listed: one
finding per line that is wrong (or per fee that is missing), with expected, billed and
their difference (billed - expected), exact and per currency.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import pandas as pd

from reconcile.analysis.billing import FEE_TYPES, ExpectedFee, NumberFacts, expected_fees
from reconcile.analysis.frames import rows
from reconcile.money import format_amount
from reconcile.period import Period, midnight

USAGE = "call_usage"
ZERO = Decimal(0)


class CallUsage(NamedTuple):
    """What a number's calls in the month cost, as the store holds them."""

    cost: Decimal
    calls: int
    minutes: int  # billed minutes: each call's started minutes


Usage = dict[tuple[str | None, str], CallUsage]  # (number_id or None for web calls, currency) -> usage


class Finding(NamedTuple):
    invoice_id: str
    line_item_id: str | None
    number_id: str | None
    phone_number: str | None
    issue: str
    expected_amount: Decimal
    billed_amount: Decimal
    difference: Decimal
    currency: str
    service_period_start: dt.date
    service_period_end: dt.date
    detail: str


FINDING_COLUMNS = list(Finding._fields)


@dataclass
class Month:
    """One month's invoices and what the rules and the calls say they should hold; what every check reads."""

    period: Period
    headers: pd.DataFrame
    lines: pd.DataFrame
    numbers: dict[str, NumberFacts]
    usage: Usage | None
    by_plan: dict[str, int] = field(default_factory=dict)   # number_id -> the release plan that released it
    expected: dict[tuple[str, str, dt.date], ExpectedFee] = field(init=False)  # fee key -> what the rules call for
    matched: dict[tuple[str, str, dt.date], int] = field(init=False)   # fee key -> its first line (a fee position)
    duplicates: list[Any] = field(init=False)                          # fee lines for a key already seen
    classified: list[tuple[Any, str, str]] = field(init=False)         # first lines of keys no rule expects: why
    first_invoice: dict[str, str] = field(init=False)                  # currency -> its first invoice
    fee_lines: pd.DataFrame = field(init=False)                        # the fee lines: by position, as read
    fee_amounts: list[Decimal] = field(init=False)                     # their amounts and currencies, read once
    fee_currencies: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.expected = {fee.key: fee for number in self.numbers.values() for fee in expected_fees(number, self.period)}
        # the fee lines stay columns: 100,000 of them match an expected fee, and a row object is
        # made only for a line a finding names (`fee_rows`)
        self.fee_lines = self.lines[self.lines["type"].isin(FEE_TYPES)]
        self.fee_amounts, self.fee_currencies = self.fee_lines["amount"].tolist(), self.fee_lines["currency"].tolist()
        self.matched = {}
        seen: set[tuple[Any, ...]] = set()
        duplicates, unmatched = [], []
        for at, key in enumerate(zip(*(self.fee_lines[name].tolist()
                                       for name in ("number_id", "type", "service_period_start")), strict=True)):
            if key in seen:
                duplicates.append(at)
            elif key in self.expected:
                self.matched[key] = at
            else:
                unmatched.append(at)
            seen.add(key)
        self.duplicates = self.fee_rows(duplicates)
        self.classified = [(line, *_classify(line, self.numbers.get(line.number_id) if line.number_id else None,
                                             self.by_plan.get(line.number_id) if line.number_id else None))
                           for line in self.fee_rows(unmatched)]
        self.first_invoice = {}
        for currency, invoice_id in zip(self.headers["currency"], self.headers["invoice_id"], strict=True):
            self.first_invoice.setdefault(currency, invoice_id)

    def fee_rows(self, positions: list[int]) -> list[Any]:
        """The fee lines at `positions` (in that order) as rows."""
        return list(rows(self.fee_lines.iloc[positions])) if positions else []

    def invoiced(self, currency: str) -> bool:
        """Whether the month has an invoice in `currency` (without one, `missing_invoice` says it all)."""
        return currency in self.first_invoice

    def phone(self, number_id: str | None) -> str | None:
        facts = self.numbers.get(number_id) if number_id else None
        return facts.phone_number if facts else None

    def from_line(self, issue: str, line: Any, expected: Decimal, billed: Decimal, detail: str,
                  number_id: str | None = None) -> Finding:
        number_id = line.number_id if number_id is None else number_id
        return Finding(line.invoice_id, line.line_item_id, number_id, line.phone_number or self.phone(number_id),
                       issue, expected, billed, billed - expected, line.currency, line.service_period_start,
                       line.service_period_end, detail)

    def from_fee(self, issue: str, fee: ExpectedFee, detail: str) -> Finding:
        return Finding(self.first_invoice.get(fee.currency, ""), None, fee.number_id,
                       fee.phone_number or self.phone(fee.number_id), issue, fee.amount, ZERO, -fee.amount,
                       fee.currency, fee.service_period_start, fee.service_period_end, detail)


@dataclass(frozen=True)
class InvoiceCheck:
    name: str              # the finding's `issue`
    description: str
    find: Callable[[Month], Iterator[Finding]]


CHECKS: dict[str, InvoiceCheck] = {}


def check(name: str, description: str) -> Callable[[Callable[[Month], Iterator[Finding]]], InvoiceCheck]:
    """Register a check under `name`; findings are listed in registration order."""
    def register(find: Callable[[Month], Iterator[Finding]]) -> InvoiceCheck:
        if name in CHECKS:
            raise ValueError(f"invoice check {name!r} registered twice")
        CHECKS[name] = InvoiceCheck(name, description, find)
        return CHECKS[name]
    return register


def _classify(line: Any, facts: NumberFacts | None, plan_id: int | None = None) -> tuple[str, str]:
    """Why a fee line matches no expected fee: (issue, detail)."""
    if line.number_id is None or facts is None:
        return "unknown_number", "the Truedy API does not know this number (not listed, not found by id)"
    if not facts.is_truedy_managed:
        return ("fee_for_imported_number",
                f"imported from {facts.provider}: its carrier bills it, Truedy charges no number fee")
    if facts.released_at is not None and facts.released_at < midnight(line.service_period_start):
        by = f" by release plan {plan_id}" if plan_id is not None else ""
        return ("fee_after_release",
                f"released{by} {facts.released_at:%Y-%m-%d %H:%M}Z, before this service period began")
    bought = facts.purchased_at.astimezone(dt.UTC).date()
    return "unexpected_fee", f"no {_fee_name(line.type)} is due on {line.service_period_start} for a number bought {bought}"


def _unmatched(issue: str) -> Callable[[Month], Iterator[Finding]]:
    """The fee lines no rule expects that `_classify` put under `issue`."""
    def find(month: Month) -> Iterator[Finding]:
        for line, kind, detail in month.classified:
            if kind == issue:
                yield month.from_line(issue, line, ZERO, line.amount, detail)
    return find


@check("missing_invoice", "fees (or call usage) were expected in a currency that has no invoice this month")
def _missing_invoice(month: Month) -> Iterator[Finding]:
    fees: dict[str, list[ExpectedFee]] = defaultdict(list)
    for fee in month.expected.values():
        if not month.invoiced(fee.currency):
            fees[fee.currency].append(fee)
    usage: dict[str, Decimal] = defaultdict(Decimal)
    for (_number, currency), used in (month.usage or {}).items():
        if not month.invoiced(currency) and used.cost:
            usage[currency] += used.cost
    for currency in sorted(set(fees) | set(usage)):
        expected = sum((fee.amount for fee in fees[currency]), ZERO) + usage[currency]
        parts = [f"{len(fees[currency]):,} number fee(s)"] if fees[currency] else []
        parts += [f"call usage of {format_amount(usage[currency], currency)} {currency}"] if usage[currency] else []
        yield Finding("", None, None, None, "missing_invoice", expected, ZERO, -expected, currency,
                      month.period.first, month.period.after,
                      f"Truedy lists no {currency} invoice for {month.period}, yet {' and '.join(parts)} "
                      f"were expected: {format_amount(expected, currency)} {currency}")


check("fee_after_release", "a fee for a renewal that starts after the number's release")(_unmatched("fee_after_release"))


@check("missing_fee", "a fee the billing rules call for that no line carries")
def _missing_fee(month: Month) -> Iterator[Finding]:
    for key, fee in month.expected.items():
        if key not in month.matched and month.invoiced(fee.currency):
            yield month.from_fee("missing_fee", fee,
                                 f"no {_fee_name(fee.type)} for the period starting {fee.service_period_start}")


@check("amount_mismatch", "billed differs from the price in force at the renewal, or from the number's currency")
def _amount_mismatch(month: Month) -> Iterator[Finding]:
    amounts, currencies = month.fee_amounts, month.fee_currencies
    wrong = [(fee, at) for key, at in month.matched.items()
             if currencies[at] != (fee := month.expected[key]).currency or amounts[at] not in fee.accepted]
    for (fee, _at), line in zip(wrong, month.fee_rows([at for _fee, at in wrong]), strict=True):
        if line.currency != fee.currency:
            yield month.from_line("amount_mismatch", line, fee.amount, line.amount,
                                  f"billed in {line.currency}; the number is priced in {fee.currency}")
        elif line.amount not in fee.accepted:
            prices = " or ".join(format_amount(a, line.currency) for a in fee.accepted)
            yield month.from_line("amount_mismatch", line, fee.amount, line.amount,
                                  f"the price in force on {fee.service_period_start} is {prices} {line.currency}")


@check("duplicate_fee", "a second line for the same number, fee type and service period")
def _duplicate_fee(month: Month) -> Iterator[Finding]:
    for line in month.duplicates:
        yield month.from_line("duplicate_fee", line, ZERO, line.amount,
                              f"a second {_fee_name(line.type)} for the same number and service period")


check("fee_for_imported_number", "a Truedy fee for a number its carrier bills")(
    _unmatched("fee_for_imported_number"))
check("unknown_number", "a fee for a number the API does not know")(_unmatched("unknown_number"))


@check("usage_mismatch", "call_usage lines that differ from the cost of the number's calls that month")
def _usage_mismatch(month: Month) -> Iterator[Finding]:
    if month.usage is None:
        return
    lines = month.lines[month.lines["type"] == USAGE]
    billed: dict[tuple[str | None, str], Decimal] = {}   # (number, currency) -> the sum of its lines
    first: dict[tuple[str | None, str], int] = {}        # -> its first line's position in `lines`
    for at, (number_id, currency, amount) in enumerate(zip(
            lines["number_id"].tolist(), lines["currency"].tolist(), lines["amount"].tolist(), strict=True)):
        key = (number_id, currency)
        if key in billed:
            billed[key] += amount
        else:
            billed[key], first[key] = ZERO + amount, at
    keys = set(billed) | {key for key, used in month.usage.items() if used.cost != ZERO and month.invoiced(key[1])}
    nothing = CallUsage(ZERO, 0, 0)
    wrong = [key for key in keys if billed.get(key, ZERO) != month.usage.get(key, nothing).cost]
    at_first = {key: first[key] for key in wrong if key in billed}  # the lines a finding names: those rows alone
    table = dict(zip(at_first, rows(lines.iloc[list(at_first.values())]), strict=True)) if at_first else {}
    for key in sorted(wrong, key=lambda k: (k[1], k[0] or "")):
        number_id, currency = key
        used = month.usage.get(key, nothing)
        detail = (f"{used.calls} call(s), {used.minutes} billed minute(s) in the store cost "
                  f"{format_amount(used.cost, currency)} {currency}" + ("" if key in billed else "; no call_usage line"))
        if key in billed:
            yield month.from_line("usage_mismatch", table[key], used.cost, billed[key], detail,
                                  number_id=number_id or "")
        else:
            yield Finding(month.first_invoice.get(currency, ""), None, number_id or "", month.phone(number_id),
                          "usage_mismatch", used.cost, ZERO, -used.cost, currency, month.period.first,
                          month.period.after, detail)


check("unexpected_fee", "a fee for a known, held number on no renewal day")(_unmatched("unexpected_fee"))


@check("total_mismatch", "an invoice total that is not the sum of its lines")
def _total_mismatch(month: Month) -> Iterator[Finding]:
    sums = _line_sums(month.lines)
    for row in rows(month.headers):
        lines_total = sums.get(row.invoice_id, ZERO)
        if lines_total != row.total:
            yield Finding(row.invoice_id, None, None, None, "total_mismatch", lines_total, row.total,
                          row.total - lines_total, row.currency, month.period.first, month.period.after,
                          "the invoice total is not the sum of its lines")


ISSUES = tuple(CHECKS)


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
    other_by_type: dict[str, Decimal] = field(default_factory=dict)  # the same, by line type
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
        return {str(issue): int(count) for issue, count in self.findings["issue"].value_counts().items()}


def reconcile_invoices(
    period: Period, headers: pd.DataFrame, lines: pd.DataFrame, numbers: dict[str, NumberFacts],
    usage: Usage | None, usage_note: str = "", by_plan: dict[str, int] | None = None,
) -> Reconciliation:
    """Compare the period's invoices (`headers`, `lines`) with what the rules and the calls say: every check.
    `by_plan`: number_id -> the release plan that released it (named in fee_after_release)."""
    month = Month(period, headers, lines, numbers, usage, by_plan or {})
    found = [finding for registered in CHECKS.values() for finding in registered.find(month)]
    frame = pd.DataFrame(found, columns=FINDING_COLUMNS)
    if len(frame):
        frame["_order"] = frame["issue"].map(ISSUES.index)
        frame = (frame.sort_values(["currency", "_order", "number_id", "invoice_id"], kind="stable", na_position="first")
                 .drop(columns="_order").reset_index(drop=True))
    return Reconciliation(period, frame, _figures(month, frame), usage is not None, usage_note)


def _figures(month: Month, findings: pd.DataFrame) -> list[CurrencyCheck]:
    """Per currency: what the invoices hold, what was expected, and what the findings add up to."""
    checks: dict[str, CurrencyCheck] = {}

    def of(currency: str) -> CurrencyCheck:
        made = checks.get(currency)  # not setdefault: that would build a CurrencyCheck for every line
        if made is None:
            made = checks[currency] = CurrencyCheck(currency)
        return made

    sums = _line_sums(month.lines)
    for row in rows(month.headers):
        c = of(row.currency)
        c.invoice_ids.append(row.invoice_id)
        c.invoice_total += row.total
        c.lines_total += sums.get(row.invoice_id, ZERO)
    for fee_currency, fee_amount in zip(month.fee_currencies, month.fee_amounts, strict=True):
        c = of(fee_currency)
        c.billed_fees += 1
        c.billed_fees_amount += fee_amount
    for key, fee in month.expected.items():
        c = of(fee.currency)
        c.expected_fees += 1
        at = month.matched.get(key)
        # a matched fee is held to a price that could have been in force (see billing.price_at)
        billed = fee.amount if at is None else month.fee_amounts[at]
        c.expected_fees_amount += billed if billed in fee.accepted else fee.amount
    for kind, currency, amount in zip(month.lines["type"].tolist(), month.lines["currency"].tolist(),
                                      month.lines["amount"].tolist(), strict=True):
        if kind == USAGE:
            of(currency).billed_usage += amount
        elif kind not in FEE_TYPES:
            c = of(currency)
            c.other_lines += amount
            c.other_by_type[kind] = c.other_by_type.get(kind, ZERO) + amount
    for (_number, currency), used in (month.usage or {}).items():
        of(currency).expected_usage += used.cost
        of(currency).usage_calls += used.calls
    for currency, group in findings.groupby("currency"):
        of(str(currency)).findings = len(group)
        of(str(currency)).difference = sum(group["difference"], ZERO)
    return [checks[c] for c in sorted(checks)]


def _line_sums(lines: pd.DataFrame) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for invoice_id, amount in zip(lines["invoice_id"].tolist(), lines["amount"].tolist(), strict=True):
        sums[invoice_id] += amount
    return sums


def _fee_name(kind: str) -> str:
    return "monthly fee" if kind == "number_monthly_fee" else "purchase fee"
