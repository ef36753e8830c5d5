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
from collections.abc import Callable, Iterator
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
               account: tuple[str, str] = ("truedy", "Truedy"), tags: dict[str | None, str] | None = None
               ) -> pd.DataFrame:
    """FOCUS rows for `period`: the invoices' lines, then the imported numbers' estimated carrier fees.

    `account`: the (id, name) of the Truedy account the invoices are billed to. `tags`: each
    number's Tags text, kept from slice to slice (a number's lines fall in several).

    `attributes` maps a number id to its tags (country, type, agent...); `estimates`
    maps an imported provider to its configured (monthly amount, currency). Built
    column by column: 140,000 lines in about a second.
    """
    bills = {row.invoice_id: (stamp(row.period_start), stamp(row.period_end + dt.timedelta(days=1)))
             for row in rows(headers)}
    tags = {} if tags is None else tags

    def tags_of(number_id: str | None) -> str:
        text = tags.get(number_id)
        if text is None:
            text = tags[number_id] = _tags(attributes.get(number_id or ""))
        return text

    columns = _line_columns(lines, bills, account, tags_of)
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


def _line_columns(lines: pd.DataFrame, bills: dict[str, tuple[str, str]], account: tuple[str, str],
                  tags_of: Callable[[str | None], str]) -> dict[str, list[Any]]:
    """The FOCUS columns of invoice lines, built a column at a time (not a dict per row)."""
    count = len(lines)
    invoice_ids, kinds, number_ids = (lines[n].tolist() for n in ("invoice_id", "type", "number_id"))
    amounts = lines["amount"].tolist()
    quantities = [q if q is not None else Decimal(1) for q in lines["quantity"].tolist()]
    units = [u if u is not None else (a / q if q else a)
             for u, a, q in zip(lines["unit_amount"].tolist(), amounts, quantities, strict=True)]
    costs = [u * q for u, q in zip(units, quantities, strict=True)]
    usage = [kind == "call_usage" for kind in kinds]
    services = [SERVICE.get(kind, NUMBERS_SERVICE) for kind in kinds]
    billing = [bills[invoice_id] for invoice_id in invoice_ids]
    return {
        "BillingPeriodStart": [b[0] for b in billing], "BillingPeriodEnd": [b[1] for b in billing],
        "ChargePeriodStart": [stamp(d) for d in lines["service_period_start"].tolist()],
        "ChargePeriodEnd": [stamp(d) for d in lines["service_period_end"].tolist()],
        "BilledCost": amounts, "EffectiveCost": list(amounts), "ListCost": costs, "ListUnitPrice": units,
        "ContractedCost": list(costs), "ContractedUnitPrice": list(units),
        "BillingCurrency": lines["currency"].tolist(), "BillingAccountId": [account[0]] * count,
        "BillingAccountName": [account[1]] * count, "ChargeCategory": [CHARGE_CATEGORY[k] for k in kinds],
        "ChargeClass": [None] * count, "ChargeFrequency": [CHARGE_FREQUENCY[k] for k in kinds],
        "ChargeDescription": [d or k for d, k in zip(lines["description"].tolist(), kinds, strict=True)],
        "InvoiceId": invoice_ids, "InvoiceIssuerName": ["Truedy"] * count, "ProviderName": ["Truedy"] * count,
        "PublisherName": ["Truedy"] * count, "ResourceId": number_ids, "ResourceName": lines["phone_number"].tolist(),
        "ResourceType": ["Phone Number" if n else None for n in number_ids],
        "ServiceName": [s[0] for s in services], "ServiceCategory": [s[1] for s in services],
        "ServiceSubcategory": [s[2] for s in services], "PricingQuantity": quantities,
        "PricingUnit": [PRICING_UNIT[k] for k in kinds],
        "ConsumedQuantity": [q if u else None for q, u in zip(quantities, usage, strict=True)],
        "ConsumedUnit": ["Minute" if u else None for u in usage], "Tags": [tags_of(n) for n in number_ids],
        "x_CostSource": ["invoice"] * count, "x_EstimatedCost": [None] * count,
        "x_LineItemId": lines["line_item_id"].tolist(), "x_LineItemType": list(kinds),
    }


def _append(columns: dict[str, list[Any]], row: dict[str, Any]) -> None:
    for name, value in row.items():
        columns[name].append(value)


_TAGS = json.JSONEncoder(ensure_ascii=False, sort_keys=True)  # json.dumps would build one per call


def _tags(values: dict[str, str] | None) -> str:
    return _TAGS.encode({k: v for k, v in (values or {}).items() if v})


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
    tag_numbers: Callable[[], dict[str, dict[str, str]]]   # each number's tags, made when the rows first are
    estimates: dict[str, tuple[Decimal | None, str]]
    account: tuple[str, str] = ("truedy", "Truedy")
    chunk: int = 20_000

    @functools.cached_property
    def attributes(self) -> dict[str, dict[str, str]]:
        """Each number's tags: made by whoever writes the rows (the forked writer), not before."""
        return self.tag_numbers()

    def chunks(self) -> Iterator[pd.DataFrame]:
        """focus.csv: the invoice lines."""
        tags: dict[str | None, str] = {}
        for start in range(0, len(self.lines), self.chunk):
            yield focus_rows(self.period, self.headers, self.lines.iloc[start:start + self.chunk], {},
                             self.attributes, {}, self.account, tags)

    def estimate_rows(self) -> pd.DataFrame:
        """carrier_estimates.csv: imported numbers' configured carrier fees, billed by no Truedy invoice."""
        return focus_rows(self.period, self.headers, self.lines.iloc[0:0], self.numbers, self.attributes,
                          self.estimates, self.account)


def billed_by_currency(rows: pd.DataFrame) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for currency, cost in zip(rows["BillingCurrency"], rows["BilledCost"], strict=True):
        totals[currency] = totals.get(currency, ZERO) + cost
    return totals

