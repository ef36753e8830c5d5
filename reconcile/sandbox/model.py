"""The sandbox's records: numbers and agents as objects, calls as numpy columns."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from reconcile.clock import format_timestamp

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# Per-minute call rates in 1/10000 of the currency unit.
CALL_RATE_UNITS = {"USD": 150, "GBP": 120, "EUR": 140}
CURRENCIES = ("USD", "GBP", "EUR")


def to_epoch(value: dt.datetime) -> int:
    return int((value - EPOCH).total_seconds())


def from_epoch(seconds: int | float) -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=int(seconds))


def ts(value: dt.datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


@dataclass
class SandboxAgent:
    id: str
    name: str
    status: str
    created_at: dt.datetime
    archived_at: dt.datetime | None
    metadata: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "created_at": ts(self.created_at),
            "archived_at": ts(self.archived_at),
            "metadata": dict(self.metadata),
        }


@dataclass
class SandboxNumber:
    id: str
    phone_number: str
    country_code: str
    phone_number_type: str
    provider: str
    features: list[str]
    upfront_cost: Decimal | None
    currency: str
    label: str | None
    purchased_at: dt.datetime
    status: str = "active"
    released_at: dt.datetime | None = None
    # direction -> (agent_id, assigned_at)
    assignments: dict[str, tuple[str, dt.datetime]] = field(default_factory=dict)
    # (effective_at, monthly_cost), oldest first; empty for imported numbers
    cost_history: list[tuple[dt.datetime, Decimal]] = field(default_factory=list)
    intent: str = ""
    index: int = -1
    _json: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def is_truedy_managed(self) -> bool:
        return self.provider == "truedy"

    @property
    def monthly_cost(self) -> Decimal | None:
        return self.cost_history[-1][1] if self.cost_history else None

    def monthly_cost_at(self, when: dt.datetime) -> Decimal | None:
        cost = None
        for effective_at, amount in self.cost_history:
            if effective_at <= when:
                cost = amount
        return cost if cost is not None else (self.cost_history[0][1] if self.cost_history else None)

    def touch(self) -> None:
        self._json = None

    def to_json(self) -> dict[str, Any]:
        if self._json is None:
            cost = None
            if self.is_truedy_managed:
                cost = {  # exact decimal strings, as many places as the price has
                    "upfront_cost": money_text(self.upfront_cost),
                    "monthly_cost": money_text(self.monthly_cost),
                    "currency": self.currency,
                }
            self._json = {
                "id": self.id,
                "phone_number": self.phone_number,
                "country_code": self.country_code,
                "phone_number_type": self.phone_number_type,
                "status": self.status,
                "is_truedy_managed": self.is_truedy_managed,
                "provider": self.provider,
                "features": list(self.features),
                "cost_information": cost,
                "label": self.label,
                "purchased_at": ts(self.purchased_at),
                "released_at": ts(self.released_at),
                "assignments": [
                    {"agent_id": agent_id, "assignment_type": direction, "assigned_at": ts(assigned_at)}
                    for direction, (agent_id, assigned_at) in sorted(self.assignments.items())
                ],
            }
        return self._json


def money_text(amount: Decimal | None) -> str:
    """At least two decimal places, more when the amount has them ("1.0075" stays)."""
    assert amount is not None
    return f"{amount:.2f}" if amount == amount.quantize(Decimal("0.01")) else f"{amount.normalize():f}"


class CallTable:
    """Calls as parallel numpy arrays, sorted by start time; row i has id call_{i:010d}."""

    COLUMNS = {
        "started": np.int64, "duration": np.int32, "visible": np.int64, "number": np.int32,
        "agent": np.int32, "outbound": np.int8, "cost_units": np.int64, "currency": np.int8,
    }

    started: npt.NDArray[np.int64]       # epoch seconds
    duration: npt.NDArray[np.int32]      # seconds
    visible: npt.NDArray[np.int64]       # epoch seconds from which the API lists the call
    number: npt.NDArray[np.int32]        # index into the account's numbers; -1 for a web call
    agent: npt.NDArray[np.int32]
    outbound: npt.NDArray[np.int8]
    cost_units: npt.NDArray[np.int64]
    currency: npt.NDArray[np.int8]

    def __init__(self) -> None:
        for name, dtype in self.COLUMNS.items():
            setattr(self, name, np.zeros(0, dtype=dtype))

    def __len__(self) -> int:
        return int(self.started.shape[0])

    def append(self, columns: dict[str, np.ndarray]) -> None:
        """Append calls (any order); they must all start after every call already held."""
        order = np.argsort(columns["started"], kind="stable")
        if len(self) and len(order) and columns["started"][order[0]] < self.started[-1]:
            raise ValueError("new calls must start after the calls already held")
        for name, dtype in self.COLUMNS.items():
            setattr(self, name, np.concatenate([getattr(self, name), columns[name][order].astype(dtype)]))

    def row_json(self, i: int, numbers: list[SandboxNumber], agent_ids: list[str]) -> dict[str, Any]:
        started = int(self.started[i])
        duration = int(self.duration[i])
        number_index = int(self.number[i])
        number = numbers[number_index] if number_index >= 0 else None
        outbound = bool(self.outbound[i])
        units = int(self.cost_units[i])
        other = f"+1555{(i * 7919) % 10_000_000:07d}"
        ours = number.phone_number if number else None
        return {
            "id": f"call_{i:010d}",
            "agent_id": agent_ids[int(self.agent[i])],
            "number_id": number.id if number else None,
            "direction": "outbound" if outbound else "inbound",
            "from_number": ours if outbound else other,
            "to_number": other if outbound else ours,
            "started_at": ts(from_epoch(started)),
            "ended_at": ts(from_epoch(started + duration)),
            "duration_seconds": duration,
            "cost": {"amount": f"{units // 10000}.{units % 10000:04d}", "currency": CURRENCIES[int(self.currency[i])]},
        }
