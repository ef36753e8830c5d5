"""The sandbox's invoices, built from the contract's billing rules, with deliberate errors.

Written on purpose apart from the job's own billing code: the sandbox is the oracle
the job's reconciliation is checked against. One invoice per calendar month and
currency, for the six complete months before the clock's month (the latest `open`,
older ones `paid`) and a `draft` for the current month. The two latest complete
months carry deliberate errors of every kind the reconciliation finds; `errors()`
lists them.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from reconcile.sandbox.model import CALL_RATE_UNITS, CURRENCIES, SandboxNumber, money_text, to_epoch

if TYPE_CHECKING:
    from reconcile.sandbox.account import Account

HISTORY_MONTHS = 6
ERROR_MONTHS = 2
SUBSCRIPTION_FEE = Decimal("499.00")
ERROR_KINDS = (
    "fee_after_release", "missing_fee", "amount_mismatch", "duplicate_fee",
    "fee_for_imported_number", "unknown_number", "usage_mismatch",
)


@dataclass(frozen=True)
class InvoiceError:
    invoice_id: str
    line_item_id: str | None
    number_id: str
    kind: str


@dataclass
class Billing:
    invoices: list[dict[str, Any]]
    lines: dict[str, list[dict[str, Any]]]
    errors: list[InvoiceError]


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` moved by whole months, clamped to the last day of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def renewal_in_month(purchased: dt.date, year: int, month: int) -> tuple[dt.date, dt.date] | None:
    """The renewal (start, end) that starts in year-month, or None before the purchase month."""
    k = (year - purchased.year) * 12 + month - purchased.month
    if k < 0:
        return None
    return add_months(purchased, k), add_months(purchased, k + 1)


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def build(account: Account) -> Billing:
    now = account.now
    current = (now.year, now.month)
    months = []
    for back in range(HISTORY_MONTHS, -1, -1):
        index = current[0] * 12 + current[1] - 1 - back
        months.append(divmod(index, 12))
    invoices, lines, errors = [], {}, []
    for position, (year, zero_month) in enumerate(months):
        month = zero_month + 1
        back = HISTORY_MONTHS - position
        status = "draft" if back == 0 else ("open" if back == 1 else "paid")
        per_currency = _month_lines(account, year, month, draft=back == 0)
        for currency in CURRENCIES:
            items = per_currency.get(currency, [])
            if not items:
                continue
            invoice_id = f"inv_{year}{month:02d}_{currency.lower()}"
            if 1 <= back <= ERROR_MONTHS:
                errors.extend(_inject_errors(account, invoice_id, items, year, month, currency))
            for seq, item in enumerate(items):
                item.setdefault("id", f"li_{year}{month:02d}{currency.lower()}_{seq:06d}")
            last = calendar.monthrange(year, month)[1]
            invoices.append({
                "id": invoice_id,
                "number": f"INV-{year}-{month:02d}-{currency}",
                "period_start": dt.date(year, month, 1).isoformat(),
                "period_end": dt.date(year, month, last).isoformat(),
                "issued_at": None if status == "draft" else f"{add_months(dt.date(year, month, 1), 1).isoformat()}T06:00:00Z",
                "status": status,
                "currency": currency,
                "total": f"{sum((Decimal(i['amount']) for i in items), Decimal(0)):f}",
            })
            lines[invoice_id] = items
    invoices.sort(key=lambda inv: (inv["period_start"], inv["currency"]), reverse=True)
    return Billing(invoices, lines, errors)


def _fee_line(number: SandboxNumber, kind: str, amount: Decimal, start: dt.date, end: dt.date) -> dict[str, Any]:
    return {
        "type": kind,
        "number_id": number.id,
        "phone_number": number.phone_number,
        "description": ("Monthly fee " if kind == "number_monthly_fee" else "Purchase fee ") + number.phone_number,
        "quantity": "1",
        "unit_amount": money_text(amount),
        "amount": money_text(amount),
        "currency": number.currency,
        "service_period_start": start.isoformat(),
        "service_period_end": end.isoformat(),
    }


def _month_lines(account: Account, year: int, month: int, draft: bool) -> dict[str, list[dict[str, Any]]]:
    first = dt.date(year, month, 1)
    last = dt.date(year, month, calendar.monthrange(year, month)[1])
    today = account.now.date()
    out: dict[str, list[dict[str, Any]]] = {c: [] for c in CURRENCIES}
    out["USD"].append({
        "type": "subscription", "number_id": None, "phone_number": None,
        "description": "Platform subscription", "quantity": "1",
        "unit_amount": f"{SUBSCRIPTION_FEE:.2f}", "amount": f"{SUBSCRIPTION_FEE:.2f}", "currency": "USD",
        "service_period_start": first.isoformat(),
        "service_period_end": add_months(first, 1).isoformat(),
    })
    for number in sorted(account.numbers, key=lambda n: (n.purchased_at, n.id)):
        if not number.is_truedy_managed:
            continue
        bought = number.purchased_at.date()
        if bought > last or (draft and bought > today):
            continue
        if first <= bought <= last:
            assert number.upfront_cost is not None
            out[number.currency].append(
                _fee_line(number, "number_upfront_fee", number.upfront_cost, bought, add_months(bought, 1)))
        period = renewal_in_month(bought, year, month)
        if period is None or (draft and period[0] > today):
            continue
        start, end = period
        if number.released_at is not None and number.released_at < midnight(start):  # strictly before: stopped
            continue
        cost = number.monthly_cost_at(midnight(start))
        assert cost is not None
        out[number.currency].append(_fee_line(number, "number_monthly_fee", cost, start, end))
    _usage_lines(account, first, add_months(first, 1), out)
    return out


def _usage_lines(account: Account, first: dt.date, after: dt.date, out: dict[str, list[dict[str, Any]]]) -> None:
    table = account.calls
    lo = int(np.searchsorted(table.started, to_epoch(midnight(first)), side="left"))
    hi = int(np.searchsorted(table.started, to_epoch(midnight(after)), side="left"))
    now = to_epoch(account.now)
    visible = table.visible[lo:hi] <= now
    numbers = table.number[lo:hi][visible].astype(np.int64) + 1  # web calls (-1) count at 0
    minutes = (table.duration[lo:hi][visible].astype(np.int64) + 59) // 60
    units = table.cost_units[lo:hi][visible]
    currency = table.currency[lo:hi][visible]
    size = len(account.numbers) + 1
    for c, code in enumerate(CURRENCIES):
        mask = currency == c
        if not mask.any():
            continue
        unit_sum = np.bincount(numbers[mask], weights=units[mask], minlength=size)
        minute_sum = np.bincount(numbers[mask], weights=minutes[mask], minlength=size)
        for slot in np.flatnonzero(minute_sum):
            number = account.numbers[slot - 1] if slot > 0 else None
            total_units = int(unit_sum[slot])
            out[code].append({
                "type": "call_usage",
                "number_id": number.id if number else None,
                "phone_number": number.phone_number if number else None,
                "description": "Call minutes" + (f" {number.phone_number}" if number else " (web and SIP)"),
                "quantity": str(int(minute_sum[slot])),
                "unit_amount": f"0.{CALL_RATE_UNITS[code]:04d}",
                "amount": f"{total_units // 10000}.{total_units % 10000:04d}",
                "currency": code,
                "service_period_start": first.isoformat(),
                "service_period_end": after.isoformat(),
            })


def _inject_errors(
    account: Account, invoice_id: str, items: list[dict[str, Any]], year: int, month: int, currency: str
) -> list[InvoiceError]:
    """Spoil the invoice on purpose, once per kind where a candidate exists."""
    rng = random.Random(f"{account.seed}:{invoice_id}")
    first = dt.date(year, month, 1)
    last = dt.date(year, month, calendar.monthrange(year, month)[1])
    found: list[InvoiceError] = []
    fees = [i for i in items if i["type"] == "number_monthly_fee"]
    fees.sort(key=lambda i: i["number_id"])
    picks = rng.sample(fees, min(3, len(fees)))
    if len(picks) == 3:
        wrong, missing, doubled = picks
        wrong["amount"] = wrong["unit_amount"] = f"{Decimal(wrong['amount']) + Decimal('0.25'):.2f}"
        wrong["id"] = f"{invoice_id}_err_amount"
        found.append(InvoiceError(invoice_id, wrong["id"], wrong["number_id"], "amount_mismatch"))
        items.remove(missing)
        found.append(InvoiceError(invoice_id, None, missing["number_id"], "missing_fee"))
        copy = dict(doubled, id=f"{invoice_id}_err_duplicate")
        items.append(copy)
        found.append(InvoiceError(invoice_id, copy["id"], doubled["number_id"], "duplicate_fee"))
    if currency != "USD":
        return found
    gone = [
        n for n in account.numbers
        if n.is_truedy_managed and n.currency == currency and n.released_at is not None
        and n.released_at.date() < first and n.purchased_at.date() < first
    ]
    if gone:
        number = rng.choice(sorted(gone, key=lambda n: n.id))
        period = renewal_in_month(number.purchased_at.date(), year, month)
        assert period is not None and number.monthly_cost is not None
        line = _fee_line(number, "number_monthly_fee", number.monthly_cost, *period)
        line["id"] = f"{invoice_id}_err_after_release"
        items.append(line)
        found.append(InvoiceError(invoice_id, line["id"], number.id, "fee_after_release"))
    imported = [
        n for n in account.numbers
        if not n.is_truedy_managed and n.currency == currency and n.purchased_at.date() < first
        and (n.released_at is None or n.released_at.date() > last)
    ]
    if imported:
        number = rng.choice(sorted(imported, key=lambda n: n.id))
        period = renewal_in_month(number.purchased_at.date(), year, month)
        assert period is not None
        line = _fee_line(number, "number_monthly_fee", Decimal("1.15"), *period)
        line["id"] = f"{invoice_id}_err_imported"
        items.append(line)
        found.append(InvoiceError(invoice_id, line["id"], number.id, "fee_for_imported_number"))
    ghost_id = f"num_GHOST{year}{month:02d}"
    items.append({
        "id": f"{invoice_id}_err_unknown", "type": "number_monthly_fee", "number_id": ghost_id,
        "phone_number": "+15550100999", "description": "Monthly fee +15550100999", "quantity": "1",
        "unit_amount": "1.15", "amount": "1.15", "currency": currency,
        "service_period_start": first.isoformat(), "service_period_end": add_months(first, 1).isoformat(),
    })
    found.append(InvoiceError(invoice_id, f"{invoice_id}_err_unknown", ghost_id, "unknown_number"))
    usage = sorted((i for i in items if i["type"] == "call_usage" and i["number_id"]), key=lambda i: i["number_id"])
    if usage:
        line = rng.choice(usage)
        line["amount"] = f"{Decimal(line['amount']) + Decimal('0.0150'):.4f}"
        line["id"] = f"{invoice_id}_err_usage"
        found.append(InvoiceError(invoice_id, line["id"], line["number_id"], "usage_mismatch"))
    return found


def billing_for(account: Account) -> Billing:
    """The account's billing, rebuilt only after the account changed."""
    cached = account._invoice_cache.get("billing")
    if cached is None:
        cached = build(account)
        account._invoice_cache["billing"] = cached
    return cached
