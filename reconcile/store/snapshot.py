"""What changed since the last snapshot: pure functions from records to version plans.

A record becomes a flat row; its hash over the versioned fields decides whether the
open version still stands. No database, no clock: the writer applies the plan.
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import orjson

from reconcile.truedy.records import Agent, PhoneNumber

NUMBER_FIELDS = (
    "number_id", "phone_number", "label", "country_code", "phone_number_type", "provider",
    "is_truedy_managed", "status", "features", "upfront_cost", "monthly_cost", "currency",
    "purchased_at", "released_at", "inbound_agent_id", "inbound_assigned_at",
    "outbound_agent_id", "outbound_assigned_at",
)
AGENT_FIELDS = ("agent_id", "name", "status", "created_at", "archived_at", "metadata")


def number_row(number: PhoneNumber) -> dict[str, Any]:
    cost = number.cost_information
    inbound = number.assignment("inbound")
    outbound = number.assignment("outbound")
    row = {
        "number_id": number.id,
        "phone_number": number.phone_number,
        "label": number.label,
        "country_code": number.country_code,
        "phone_number_type": number.phone_number_type,
        "provider": number.provider,
        "is_truedy_managed": number.is_truedy_managed,
        "status": number.status,
        "features": _features_json(number.features),
        "upfront_cost": cost.upfront_cost if cost else None,
        "monthly_cost": cost.monthly_cost if cost else None,
        "currency": cost.currency if cost else None,
        "purchased_at": number.purchased_at,
        "released_at": number.released_at,
        "inbound_agent_id": inbound.agent_id if inbound else None,
        "inbound_assigned_at": inbound.assigned_at if inbound else None,
        "outbound_agent_id": outbound.agent_id if outbound else None,
        "outbound_assigned_at": outbound.assigned_at if outbound else None,
    }
    row["row_hash"] = row_hash(row, NUMBER_FIELDS)
    return row


def agent_row(agent: Agent) -> dict[str, Any]:
    row = {
        "agent_id": agent.id,
        "name": agent.name,
        "status": agent.status,
        "created_at": agent.created_at,
        "archived_at": agent.archived_at,
        "metadata": json.dumps(dict(agent.metadata), sort_keys=True, ensure_ascii=False),
    }
    row["row_hash"] = row_hash(row, AGENT_FIELDS)
    return row


def row_hash(row: Mapping[str, Any], fields: Iterable[str]) -> str:
    """A stable digest of the versioned fields; Decimals by value ('1.10' == '1.1').

    The bytes digested are what `json.dumps(parts, ensure_ascii=False, separators=(",", ":"))`
    wrote, each time as its `isoformat()` and each Decimal normalized: made by orjson, which
    writes times that way itself and calls back only for a Decimal (a test holds them equal),
    so every stored version's hash stays what it was. A number's row: 8.7 us -> 3 us.
    """
    pick = _picker(tuple(fields))
    return hashlib.blake2b(orjson.dumps(pick(row), default=_decimal_text), digest_size=16).hexdigest()


@functools.lru_cache(maxsize=16)
def _picker(fields: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of `fields` as a tuple, at C speed (one field: itemgetter would give the value bare)."""
    if len(fields) > 1:
        return operator.itemgetter(*fields)
    return lambda row: tuple(row[name] for name in fields)


def _decimal_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    raise TypeError(f"{type(value).__name__} is not a versioned field's type")


@functools.lru_cache(maxsize=1024)
def _features_json(features: tuple[str, ...]) -> str:
    """A number's features as stored: few distinct sets among 100,000 numbers, each written once."""
    return json.dumps(sorted(features))


class OpenVersion(NamedTuple):
    """What the store holds about a key's open version: enough to decide whether it still stands."""

    version_id: int
    row_hash: str
    status: str
    source_hash: str | None  # the upstream record's fingerprint when it was last seen (numbers only)


@dataclass
class VersionPlan:
    to_open: list[dict[str, Any]] = field(default_factory=list)
    to_close: list[int] = field(default_factory=list)
    unchanged: int = 0


def plan_versions(
    current: Mapping[str, OpenVersion], incoming: Mapping[str, dict[str, Any]], gone: Iterable[str] = (),
) -> VersionPlan:
    """Versions to open and close so that the open versions equal `incoming`.

    current: key -> its open version. incoming: key -> row with `row_hash`.
    gone: keys whose open version closes with no successor. Keys in neither stay as
    they are (a number not listed and not yet confirmed gone is never closed).
    """
    plan = VersionPlan()
    for key, row in incoming.items():
        open_version = current.get(key)
        if open_version is None:
            plan.to_open.append(row)
        elif open_version.row_hash != row["row_hash"]:
            plan.to_close.append(open_version.version_id)
            plan.to_open.append(row)
        else:
            plan.unchanged += 1
    for key in gone:
        if key in current and key not in incoming:
            plan.to_close.append(current[key].version_id)
    return plan


def numbers_to_confirm(open_numbers: Mapping[str, OpenVersion], seen: set[str]) -> list[str]:
    """Numbers with an open, non-released version that no listing showed: ask the API about each."""
    return sorted(number_id for number_id, version in open_numbers.items()
                  if number_id not in seen and version.status != "released")


def merge_number_listings(live: Iterable[PhoneNumber], released: Iterable[PhoneNumber]) -> dict[str, PhoneNumber]:
    """One record per id; a number in both listings (released while we paged) is released."""
    merged = {number.id: number for number in live}
    for number in released:
        merged[number.id] = number
    return merged
