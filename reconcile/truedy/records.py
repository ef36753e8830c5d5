"""Typed records of the Truedy contract, and their validation.

Money is `Decimal`, timestamps aware UTC, unknown fields ignored. A record that breaks
the contract raises `RecordError` naming the field; listings turn that into a
`DataIssue` (record type, id, field, why) instead of crashing or dropping it silently.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from reconcile.truedy.fields import (
    Fields,
    RecordError,
    as_bool,
    as_e164,
    as_object,
    as_record,
    as_string_list,
)

NUMBER_STATUSES = frozenset({"pending", "active", "released"})
NUMBER_TYPES = frozenset({"local", "toll-free", "mobile"})
PROVIDERS = frozenset({"truedy", "twilio", "telnyx"})
DIRECTIONS = frozenset({"inbound", "outbound"})
AGENT_STATUSES = frozenset({"active", "archived"})
INVOICE_STATUSES = frozenset({"draft", "open", "paid", "void"})
LINE_ITEM_TYPES = frozenset(
    {"subscription", "number_upfront_fee", "number_monthly_fee", "call_usage", "credit", "adjustment"}
)


@dataclass(frozen=True, slots=True)
class DataIssue:
    """A record the API sent that we could not accept, kept for the report."""

    record_type: str
    record_id: str
    field: str
    reason: str

    def describe(self) -> str:
        return f"{self.record_type} {self.record_id or '(no id)'}: {self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class CostInformation:
    upfront_cost: Decimal
    monthly_cost: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Assignment:
    agent_id: str
    assignment_type: str
    assigned_at: dt.datetime


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    id: str
    phone_number: str
    country_code: str
    phone_number_type: str
    status: str
    is_truedy_managed: bool
    provider: str
    features: tuple[str, ...]
    cost_information: CostInformation | None
    label: str | None
    purchased_at: dt.datetime
    released_at: dt.datetime | None
    assignments: tuple[Assignment, ...]

    def assignment(self, direction: str) -> Assignment | None:
        for item in self.assignments:
            if item.assignment_type == direction:
                return item
        return None


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    name: str
    status: str
    created_at: dt.datetime
    archived_at: dt.datetime | None
    metadata: Mapping[str, str] = field(default_factory=dict)


class Call(NamedTuple):
    """A call record. A named tuple, not a dataclass: a first sync makes 750,000 of them (made at
    C speed, half a frozen dataclass's time), and its fields go to the store a column at a time
    (`zip(*calls)`, see `CallStaging.add_calls`), in the order of the `calls` table."""

    id: str
    agent_id: str
    number_id: str | None
    direction: str
    from_number: str | None
    to_number: str | None
    started_at: dt.datetime
    ended_at: dt.datetime
    duration_seconds: int
    cost_amount: Decimal
    cost_currency: str


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    number: str | None
    period_start: dt.date
    period_end: dt.date
    issued_at: dt.datetime | None
    status: str
    currency: str
    total: Decimal


@dataclass(frozen=True, slots=True)
class LineItem:
    id: str
    invoice_id: str
    type: str
    number_id: str | None
    phone_number: str | None
    description: str
    quantity: Decimal | None
    unit_amount: Decimal | None
    amount: Decimal
    currency: str
    service_period_start: dt.date
    service_period_end: dt.date


def parse_cost_information(raw: Any) -> CostInformation:
    f = Fields(as_object(raw))
    upfront = f.required_amount("upfront_cost")
    monthly = f.required_amount("monthly_cost")
    if monthly < 0 or upfront < 0:
        raise RecordError("monthly_cost" if monthly < 0 else "upfront_cost", "must not be negative")
    return CostInformation(upfront_cost=upfront, monthly_cost=monthly, currency=f.currency("currency"))


def parse_assignment(raw: Any) -> Assignment:
    f = Fields(as_object(raw))
    return Assignment(
        agent_id=f.required_text("agent_id"),
        assignment_type=f.enum("assignment_type", DIRECTIONS),
        assigned_at=f.required_timestamp("assigned_at"),
    )


def _assignments(value: Any) -> tuple[Assignment, ...]:
    if not isinstance(value, list):
        raise ValueError("must be a list")
    if len(value) > 2:
        raise ValueError(f"holds {len(value)} assignments, at most 2 allowed")
    items = tuple(parse_assignment(item) for item in value)
    if len({item.assignment_type for item in items}) != len(items):
        raise ValueError("two assignments for the same direction")
    return items


def parse_number(raw: Any) -> PhoneNumber:
    f = Fields(as_record(raw))
    number_id = f.required_text("id")
    managed = f.required("is_truedy_managed", as_bool)
    provider = f.enum("provider", PROVIDERS)
    cost = f.convert("cost_information", parse_cost_information, nullable=True)
    if managed and cost is None:
        raise RecordError("cost_information", "null for a Truedy-managed number")
    status = f.enum("status", NUMBER_STATUSES)
    released_at = f.timestamp("released_at", nullable=True)
    if status == "released" and released_at is None:
        raise RecordError("released_at", "null for a released number")
    country = f.required_text("country_code")
    if len(country) != 2 or not country.isalpha():
        raise RecordError("country_code", f"not an ISO 3166-1 alpha-2 code: {country[:10]!r}")
    return PhoneNumber(
        id=number_id,
        phone_number=f.convert("phone_number", as_e164) or "",
        country_code=sys.intern(country.upper()),  # two letters: a closed set, one string per code
        phone_number_type=f.enum("phone_number_type", NUMBER_TYPES),
        status=status,
        is_truedy_managed=managed,
        provider=provider,
        features=f.convert("features", as_string_list) or (),
        cost_information=cost,
        label=f.text("label", nullable=True, required=False),
        purchased_at=f.required_timestamp("purchased_at"),
        released_at=released_at,
        assignments=f.convert("assignments", _assignments) or (),
    )


def _metadata(value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError("must be an object of strings")
    return dict(value)


def parse_agent(raw: Any) -> Agent:
    f = Fields(as_record(raw))
    return Agent(
        id=f.required_text("id"),
        name=f.text("name") or "",
        status=f.enum("status", AGENT_STATUSES),
        created_at=f.required_timestamp("created_at"),
        archived_at=f.timestamp("archived_at", nullable=True, required=False),
        metadata=f.convert("metadata", _metadata, nullable=True, required=False) or {},
    )


def _duration(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"must be a whole number of seconds >= 0, got {str(value)[:20]!r}")
    return value


def parse_call(raw: Any) -> Call:
    """A call record (decoded JSON), field by field: a RecordError names the field that is wrong."""
    f = Fields(as_record(raw))
    cost = Fields(f.convert("cost", as_object) or {})
    try:
        amount = cost.required_amount("amount")
        currency = cost.currency("currency")
    except RecordError as exc:
        raise RecordError(f"cost.{exc.field_name}", exc.reason) from None
    if amount < 0:
        raise RecordError("cost.amount", "must not be negative")
    return Call(
        id=f.required_text("id"),
        agent_id=f.required_text("agent_id"),
        number_id=f.text("number_id", nullable=True),
        direction=f.enum("direction", DIRECTIONS),
        from_number=f.text("from_number", nullable=True, required=False),
        to_number=f.text("to_number", nullable=True, required=False),
        started_at=f.required_timestamp("started_at"),
        ended_at=f.required_timestamp("ended_at"),
        duration_seconds=f.convert("duration_seconds", _duration) or 0,
        cost_amount=amount,
        cost_currency=currency,
    )


def parse_invoice(raw: Any) -> Invoice:
    f = Fields(as_record(raw))
    total = f.required_amount("total")
    return Invoice(
        id=f.required_text("id"),
        number=f.text("number", nullable=True, required=False),
        period_start=f.required_date("period_start"),
        period_end=f.required_date("period_end"),
        issued_at=f.timestamp("issued_at", nullable=True),
        status=f.enum("status", INVOICE_STATUSES),
        currency=f.currency("currency"),
        total=total,
    )


def line_item_parser(invoice_id: str) -> Callable[[Any], LineItem]:
    def parse_line_item(raw: Any) -> LineItem:
        f = Fields(as_record(raw))
        amount = f.required_amount("amount")
        return LineItem(
            id=f.required_text("id"),
            invoice_id=invoice_id,
            type=f.enum("type", LINE_ITEM_TYPES),
            number_id=f.text("number_id", nullable=True),
            phone_number=f.text("phone_number", nullable=True, required=False),
            description=f.text("description", required=False) or "",
            quantity=f.amount("quantity", required=False),
            unit_amount=f.amount("unit_amount", required=False),
            amount=amount,
            currency=f.currency("currency"),
            service_period_start=f.required_date("service_period_start"),
            service_period_end=f.required_date("service_period_end"),
        )

    return parse_line_item
