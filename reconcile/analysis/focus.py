"""The month's charges as FinOps FOCUS 1.2 rows: one per invoice line; estimates apart.

Every invoice line becomes a row whose BilledCost is the line's amount, so the
BilledCost per currency equals the invoices' totals. Imported numbers' carrier fees
(when `[carrier_costs]` configures them) are not on any Truedy invoice: they are rows of
the same shape in a file of their own (carrier_estimates.csv), with every FOCUS cost at
0, the estimate in `x_EstimatedCost` and `x_CostSource` "estimate", never in focus.csv:
a FOCUS dataset's charges either all belong to invoices or none do (InvoiceId).

Values follow the specification's allowed values: ChargeCategory Purchase, Usage,
Credit or Adjustment; ChargeFrequency One-Time, Recurring or Usage-Based; periods as
UTC timestamps with exclusive ends; ConsumedQuantity and ConsumedUnit only on Usage
rows; ListCost = ListUnitPrice x PricingQuantity. FOCUS 1.2 names the issuer,
provider and publisher columns InvoiceIssuerName, ProviderName and PublisherName.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd

from reconcile.analysis.billing import NumberFacts, held_during
from reconcile.analysis.frames import rows
from reconcile.period import Period

FOCUS_COLUMNS = [
    "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
    "BilledCost", "EffectiveCost", "ListCost", "ListUnitPrice", "ContractedCost", "ContractedUnitPrice",
    "BillingCurrency", "BillingAccountId", "BillingAccountName", "ChargeCategory", "ChargeClass", "ChargeFrequency", "ChargeDescription",
    "InvoiceId", "InvoiceIssuerName", "ProviderName", "PublisherName",
    "ResourceId", "ResourceName", "ResourceType", "ServiceName", "ServiceCategory", "ServiceSubcategory",
    "PricingQuantity", "PricingUnit", "ConsumedQuantity", "ConsumedUnit", "Tags",
    "x_CostSource", "x_EstimatedCost", "x_LineItemId", "x_LineItemType",
]
CHARGE_CATEGORY = {"subscription": "Purchase", "number_upfront_fee": "Purchase", "number_monthly_fee": "Purchase",
                   "call_usage": "Usage", "credit": "Credit", "adjustment": "Adjustment"}
CHARGE_FREQUENCY = {"subscription": "Recurring", "number_upfront_fee": "One-Time", "number_monthly_fee": "Recurring",
                    "call_usage": "Usage-Based", "credit": "One-Time", "adjustment": "One-Time"}
PRICING_UNIT = {"subscription": "Month", "number_upfront_fee": "Count", "number_monthly_fee": "Month",
                "call_usage": "Minute", "credit": "Count", "adjustment": "Count"}
SERVICE = {"subscription": ("Truedy Platform", "AI and Machine Learning", "Bots"),
           "call_usage": ("Truedy Voice Calls", "Networking", "Network Connectivity")}
NUMBERS_SERVICE = ("Truedy Phone Numbers", "Networking", "Network Connectivity")
CARRIERS = {"twilio": "Twilio", "telnyx": "Telnyx"}
ZERO = Decimal(0)


@functools.cache
def stamp(day: dt.date) -> str:
    return f"{day:%Y-%m-%d}T00:00:00Z"


def focus_rows(period: Period, headers: pd.DataFrame, lines: pd.DataFrame, numbers: dict[str, NumberFacts],
               attributes: dict[str, dict[str, str]], estimates: dict[str, tuple[Decimal | None, str]],
               account: tuple[str, str] = ("truedy", "Truedy")) -> pd.DataFrame:
    """FOCUS rows for `period`: the invoices' lines, then the imported numbers' estimated carrier fees.

    `account`: the (id, name) of the Truedy account the invoices are billed to.

    `attributes` maps a number id to its tags (country, type, agent...); `estimates`
    maps an imported provider to its configured (monthly amount, currency). Built
    column by column: 140,000 lines in about a second.
    """
    bills = {row.invoice_id: (stamp(row.period_start), stamp(row.period_end + dt.timedelta(days=1)))
             for row in rows(headers)}
    tags: dict[str | None, str] = {}

    def tags_of(number_id: str | None) -> str:
        text = tags.get(number_id)
        if text is None:
            text = tags[number_id] = _tags(attributes.get(number_id or ""))
        return text

    columns: dict[str, list[Any]] = {name: [] for name in FOCUS_COLUMNS}
    names = ["invoice_id", "line_item_id", "type", "number_id", "phone_number", "description", "quantity",
             "unit_amount", "amount", "currency", "service_period_start", "service_period_end"]
    for (invoice_id, line_id, kind, number_id, phone, description, quantity, unit, amount, currency, start,
         end) in zip(*(lines[name].tolist() for name in names), strict=True):
        quantity = quantity if quantity is not None else Decimal(1)
        if unit is None:
            unit = amount / quantity if quantity else amount
        service, category, subcategory = SERVICE.get(kind, NUMBERS_SERVICE)
        usage = kind == "call_usage"
        billing_start, billing_end = bills[invoice_id]
        _append(columns, {
            "BillingPeriodStart": billing_start, "BillingPeriodEnd": billing_end,
            "ChargePeriodStart": stamp(start), "ChargePeriodEnd": stamp(end),
            "BilledCost": amount, "EffectiveCost": amount, "ListCost": unit * quantity, "ListUnitPrice": unit,
            "ContractedCost": unit * quantity, "ContractedUnitPrice": unit,
            "BillingCurrency": currency, "BillingAccountId": account[0], "BillingAccountName": account[1],
            "ChargeCategory": CHARGE_CATEGORY[kind], "ChargeClass": None,
            "ChargeFrequency": CHARGE_FREQUENCY[kind], "ChargeDescription": description or kind,
            "InvoiceId": invoice_id, "InvoiceIssuerName": "Truedy", "ProviderName": "Truedy", "PublisherName": "Truedy",
            "ResourceId": number_id, "ResourceName": phone, "ResourceType": "Phone Number" if number_id else None,
            "ServiceName": service, "ServiceCategory": category, "ServiceSubcategory": subcategory,
            "PricingQuantity": quantity, "PricingUnit": PRICING_UNIT[kind],
            "ConsumedQuantity": quantity if usage else None, "ConsumedUnit": "Minute" if usage else None,
            "Tags": tags_of(number_id), "x_CostSource": "invoice", "x_EstimatedCost": None,
            "x_LineItemId": line_id, "x_LineItemType": kind,
        })
    for number in sorted(numbers.values(), key=lambda n: n.number_id):
        estimate = estimates.get(number.provider)
        if number.is_truedy_managed or estimate is None or estimate[0] is None:
            continue
        if not held_during(number.purchased_at, number.released_at, period.start, period.end):
            continue
        carrier = CARRIERS.get(number.provider, number.provider)
        start = max(period.first, number.purchased_at.astimezone(dt.UTC).date())
        _append(columns, {
            "BillingPeriodStart": stamp(period.first), "BillingPeriodEnd": stamp(period.after),
            "ChargePeriodStart": stamp(start), "ChargePeriodEnd": stamp(period.after),
            "BilledCost": ZERO, "EffectiveCost": ZERO, "ListCost": ZERO, "ListUnitPrice": ZERO,
            "ContractedCost": ZERO, "ContractedUnitPrice": ZERO,
            "BillingCurrency": estimate[1], "BillingAccountId": number.provider, "BillingAccountName": carrier,
            "ChargeCategory": "Purchase", "ChargeClass": None,
            "ChargeFrequency": "Recurring",
            "ChargeDescription": f"Estimated {carrier} number fee (configured estimate; billed by {carrier}, not Truedy)",
            "InvoiceId": None, "InvoiceIssuerName": carrier, "ProviderName": carrier, "PublisherName": carrier,
            "ResourceId": number.number_id, "ResourceName": number.phone_number, "ResourceType": "Phone Number",
            "ServiceName": f"{carrier} Phone Numbers", "ServiceCategory": "Networking",
            "ServiceSubcategory": "Network Connectivity",
            "PricingQuantity": Decimal(1), "PricingUnit": "Month", "ConsumedQuantity": None, "ConsumedUnit": None,
            "Tags": tags_of(number.number_id), "x_CostSource": "estimate", "x_EstimatedCost": estimate[0],
            "x_LineItemId": None, "x_LineItemType": "carrier_estimate",
        })
    return pd.DataFrame(columns, columns=FOCUS_COLUMNS, dtype=object)


def _append(columns: dict[str, list[Any]], row: dict[str, Any]) -> None:
    for name, value in row.items():
        columns[name].append(value)


def _tags(values: dict[str, str] | None) -> str:
    return json.dumps({k: v for k, v in (values or {}).items() if v}, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class FocusExport:
    """The month's FOCUS rows, made a slice of invoice lines at a time; the estimates apart.

    140,000 lines as 33-column rows would hold a few hundred MB at once; a slice
    of 20,000 holds a seventh of that, and the rows go straight to focus.csv.
    """

    period: Period
    headers: pd.DataFrame
    lines: pd.DataFrame
    numbers: dict[str, NumberFacts]
    attributes: dict[str, dict[str, str]]
    estimates: dict[str, tuple[Decimal | None, str]]
    account: tuple[str, str] = ("truedy", "Truedy")
    chunk: int = 20_000

    def chunks(self) -> Iterator[pd.DataFrame]:
        """focus.csv: the invoice lines."""
        for start in range(0, len(self.lines), self.chunk):
            yield focus_rows(self.period, self.headers, self.lines.iloc[start:start + self.chunk], {},
                             self.attributes, {}, self.account)

    def estimate_rows(self) -> pd.DataFrame:
        """carrier_estimates.csv: imported numbers' configured carrier fees, billed by no Truedy invoice."""
        return focus_rows(self.period, self.headers, self.lines.iloc[0:0], self.numbers, self.attributes,
                          self.estimates, self.account)


def billed_by_currency(rows: pd.DataFrame) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for currency, cost in zip(rows["BillingCurrency"], rows["BilledCost"], strict=True):
        totals[currency] = totals.get(currency, ZERO) + cost
    return totals

