"""Records as the contract serves them, read at C speed: msgspec decodes each into its wire form.

A wire form holds each field of its JSON type, checked in C; what JSON types cannot say
(amounts, timestamps, a country code's letters, the names `records` allows for a status, a
type, a provider or a direction) is checked here. A record that is not
plainly right goes the careful way (`records.parse_number`, `records.parse_call`),
field by field, which names the field that is wrong; either way the answer is the same
(tests hold the two equal for every unusual value of every field).

The wire forms take no field the contract does not name: msgspec would skip it unread,
where orjson refuses what it cannot read (a number past a double, a byte that is not
UTF-8) and so the listing; such a record goes the careful way, and its answer is the same.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from operator import attrgetter
from typing import Annotated

import msgspec
import orjson

from reconcile.clock import parse_timestamp, parse_timestamps
from reconcile.money import parse_amount, parse_currency
from reconcile.truedy.fields import E164, RecordError, record_id
from reconcile.truedy.records import (
    DIRECTIONS,
    NUMBER_STATUSES,
    NUMBER_TYPES,
    PROVIDERS,
    Assignment,
    Call,
    CostInformation,
    DataIssue,
    PhoneNumber,
    parse_call,
)


class _WireCostInformation(msgspec.Struct, forbid_unknown_fields=True):
    upfront_cost: str
    monthly_cost: str
    currency: str


class _WireAssignment(msgspec.Struct, forbid_unknown_fields=True):
    agent_id: Annotated[str, msgspec.Meta(min_length=1)]
    assignment_type: str
    assigned_at: str


class _WireNumber(msgspec.Struct, forbid_unknown_fields=True):
    """A number as the contract serves it, each field of its JSON type, checked at C speed (msgspec)."""

    id: Annotated[str, msgspec.Meta(min_length=1)]
    phone_number: str
    country_code: str
    phone_number_type: str
    status: str
    is_truedy_managed: bool
    provider: str
    features: list[str]
    cost_information: _WireCostInformation | None
    purchased_at: str
    released_at: str | None
    assignments: Annotated[list[_WireAssignment], msgspec.Meta(max_length=2)]
    label: str | None = None


_WIRE_NUMBER = msgspec.json.Decoder(_WireNumber)


def plain_number(served: bytes | msgspec.Raw) -> PhoneNumber | None:
    """A number record as served (its bytes) when it is plainly right, else None: `parse_number` on the
    decoded record then says which field is wrong. Never a different answer (a test holds them equal).

    100,000 numbers in a first sync: msgspec decodes and types each record in C, leaving the
    checks JSON types cannot make (amounts, timestamps, a code's letters, the allowed names).
    """
    try:
        wire = _WIRE_NUMBER.decode(served)
        cost = None
        if wire.cost_information is not None:
            given = wire.cost_information
            cost = CostInformation(parse_amount(given.upfront_cost), parse_amount(given.monthly_cost),
                                   parse_currency(given.currency))
            if cost.upfront_cost < 0 or cost.monthly_cost < 0:
                return None
        purchased_at = parse_timestamp(wire.purchased_at)
        released_at = None if wire.released_at is None else parse_timestamp(wire.released_at)
        assignments = tuple(Assignment(item.agent_id, sys.intern(item.assignment_type), parse_timestamp(item.assigned_at))
                            for item in wire.assignments)
    except (msgspec.DecodeError, ValueError):  # a field of the wrong type, an amount or a time out of the usual
        return None
    country = wire.country_code
    if ((cost is None and wire.is_truedy_managed) or (released_at is None and wire.status == "released")
            or wire.status not in NUMBER_STATUSES or wire.phone_number_type not in NUMBER_TYPES
            or wire.provider not in PROVIDERS or len(country) != 2 or not country.isalpha()
            or not E164.fullmatch(wire.phone_number)
            or not all(item.assignment_type in DIRECTIONS for item in assignments)
            or (len(assignments) == 2 and assignments[0].assignment_type == assignments[1].assignment_type)):
        return None
    return PhoneNumber(wire.id, wire.phone_number, sys.intern(country.upper()), sys.intern(wire.phone_number_type),
                       sys.intern(wire.status), wire.is_truedy_managed, sys.intern(wire.provider), tuple(wire.features),
                       cost, wire.label, purchased_at, released_at, assignments)


class _WireCost(msgspec.Struct, forbid_unknown_fields=True):
    amount: str
    currency: str


class _WireCall(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A call as the contract serves it, each field of its JSON type, checked at C speed (msgspec),
    in the order of `Call` (the cost still an object). Narrower than the contract where that is
    cheap (ids non-empty, whole seconds up to 2^31): a record outside goes the careful way."""

    id: Annotated[str, msgspec.Meta(min_length=1)]
    agent_id: Annotated[str, msgspec.Meta(min_length=1)]
    number_id: str | None
    direction: str
    from_number: str | None = None
    to_number: str | None = None
    started_at: str
    ended_at: str
    duration_seconds: Annotated[int, msgspec.Meta(ge=0, le=2**31)]
    cost: _WireCost


_WIRE_CALL = msgspec.json.Decoder(_WireCall)
_AMOUNT, _CURRENCY = attrgetter("amount"), attrgetter("currency")


def parse_calls(records: Sequence[msgspec.Raw]) -> tuple[list[Call], list[DataIssue]]:
    """A calls page's records, each as the bytes it was served in (`paging.with_raw_records`):
    its calls, and a data issue for each record refused.

    A million calls a quarter. A page whose every record is plainly right is decoded by msgspec
    and checked a column at a time (its timestamps, amounts and currencies at once); a page
    with anything unusual goes record by record the careful way (`parse_call`), which names
    the field that is wrong. Both give the same calls (a test holds them equal). A record that
    is not JSON raises `orjson.JSONDecodeError`.
    """
    try:
        return _plain_calls(list(map(_WIRE_CALL.decode, records))), []
    except (msgspec.DecodeError, ValueError):  # a field of the wrong type, an amount or a time out of the usual
        pass
    calls: list[Call] = []
    issues: list[DataIssue] = []
    for raw in records:
        record = orjson.loads(memoryview(raw))
        try:
            calls.append(parse_call(record))
        except RecordError as exc:
            issues.append(DataIssue("call", record_id(record), exc.field_name, exc.reason))
    return calls, issues


def _plain_calls(wire: list[_WireCall]) -> list[Call]:
    """The calls of records msgspec decoded, their columns checked whole; ValueError for anything unusual."""
    if not wire:
        return []
    ids, agents, numbers, directions, froms, tos, starts, ends, durations, costs = zip(
        *map(msgspec.structs.astuple, wire), strict=True)
    if not set(directions) <= DIRECTIONS:
        raise ValueError("a direction the contract does not name")
    amounts = list(map(parse_amount, map(_AMOUNT, costs)))
    if min(amounts) < 0:
        raise ValueError("a negative amount")
    return list(map(Call, ids, agents, numbers, directions, froms, tos, parse_timestamps(starts),
                    parse_timestamps(ends), durations, amounts, list(map(parse_currency, map(_CURRENCY, costs)))))
