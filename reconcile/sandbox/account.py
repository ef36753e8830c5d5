"""The sandbox's account: state, its clock, the contract's operations, and evolution.

Every operation takes `lock`, so the HTTP server thread and a test or demo that
advances the clock never see each other's half-made changes.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import re
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from reconcile.sandbox.model import (
    CALL_RATE_UNITS,
    CURRENCIES,
    CallTable,
    SandboxAgent,
    SandboxNumber,
    to_epoch,
)

DAY = dt.timedelta(days=1)
RELEASED_LISTING_DAYS = 400


class SandboxError(Exception):
    """A request the contract answers with an error status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Faults:
    """Knobs that make the sandbox misbehave the ways the contract says Truedy can."""

    latency_s: float = 0.0          # added to every answer
    rate_limit: int = 20            # requests per second per key; 0 turns the limit off
    error_rate: float = 0.0         # share of answers that are 500/502/503/504
    slow_rate: float = 0.0          # share of answers delayed by slow_s (to trip timeouts)
    slow_s: float = 5.0
    malformed: int = 0              # numbers and calls served with a broken field
    churn_per_listing: float = 0.0  # chance per numbers page that one number is bought and one released
    lose_write_answers: int = 0     # the next N writes (POST, DELETE) act, then answer 503 (a lost answer)


class Account:
    def __init__(self, seed: int, now: dt.datetime) -> None:
        self.seed = seed
        self.lock = threading.RLock()
        self.agents: list[SandboxAgent] = []
        self.agent_by_id: dict[str, SandboxAgent] = {}
        self.numbers: list[SandboxNumber] = []
        self.number_by_id: dict[str, SandboxNumber] = {}
        self.phone_numbers_in_use: set[str] = set()
        self.calls = CallTable()
        self.calls_per_day = 10
        self.faults = Faults()
        self.offered: dict[str, tuple[str, str]] = {}
        self.days_advanced = 0
        self.malformed_number_ids: set[str] = set()
        self.malformed_call_rows: set[int] = set()
        self._rng = random.Random(seed * 7919 + 1)
        self._clock_base = now
        self._clock_anchor: float | None = None
        self._listing_cache: dict[str | None, list[SandboxNumber]] = {}
        self._invoice_cache: dict[str, Any] = {}

    # -- clock -----------------------------------------------------------------------

    @property
    def now(self) -> dt.datetime:
        if self._clock_anchor is None:
            return self._clock_base
        return self._clock_base + dt.timedelta(seconds=time.monotonic() - self._clock_anchor)

    def follow_real_time(self) -> None:
        """From now on the clock runs with real time (as `sandbox serve` does)."""
        with self.lock:
            self._clock_base = self.now
            self._clock_anchor = time.monotonic()

    def _set_now(self, value: dt.datetime) -> None:
        self._clock_base = value
        if self._clock_anchor is not None:
            self._clock_anchor = time.monotonic()

    # -- building ----------------------------------------------------------------------

    def add_agent(self, agent: SandboxAgent) -> None:
        self.agents.append(agent)
        self.agent_by_id[agent.id] = agent

    def add_number(self, number: SandboxNumber) -> None:
        number.index = len(self.numbers)
        self.numbers.append(number)
        self.number_by_id[number.id] = number
        if number.status != "released":
            self.phone_numbers_in_use.add(number.phone_number)
        self._changed()

    def reindex(self) -> None:
        self._changed()

    def set_malformed(self, count: int) -> None:
        """Serve `count` numbers and `count` calls with one broken field each."""
        with self.lock:
            rng = random.Random(self.seed + 404)
            live = [n.id for n in self.numbers if n.status != "released"]
            self.malformed_number_ids = set(rng.sample(live, min(count, len(live))))
            rows = len(self.calls)
            self.malformed_call_rows = set(rng.sample(range(rows), min(count, rows)))
            self.faults.malformed = count
            self._changed()

    def _changed(self) -> None:
        self._listing_cache.clear()
        self._invoice_cache.clear()

    # -- reads ---------------------------------------------------------------------------

    def listing(self, status: str | None) -> list[SandboxNumber]:
        """Numbers as the listing shows them now, sorted by purchased_at then id."""
        cached = self._listing_cache.get(status)
        if cached is None:
            if status is None:
                chosen = [n for n in self.numbers if n.status in ("active", "pending")]
            elif status == "released":
                cutoff = self.now - dt.timedelta(days=RELEASED_LISTING_DAYS)
                chosen = [n for n in self.numbers if n.status == "released" and n.released_at and n.released_at >= cutoff]
            else:
                chosen = [n for n in self.numbers if n.status == status]
            cached = sorted(chosen, key=lambda n: (n.purchased_at, n.id))
            self._listing_cache[status] = cached
        return cached

    def number_json(self, number: SandboxNumber) -> dict[str, Any]:
        body = number.to_json()
        if number.id in self.malformed_number_ids:
            body = dict(body)
            kind = int(number.id.encode().hex(), 16) % 4
            if kind == 0:
                body["cost_information"] = {"upfront_cost": "1.00", "monthly_cost": "1,15", "currency": "USD"}
            elif kind == 1:
                body["purchased_at"] = "last tuesday"
            elif kind == 2:
                body["phone_number"] = "555-0100"
            else:
                del body["status"]
        return body

    def calls_page(
        self, started_after: dt.datetime | None, started_before: dt.datetime | None, cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        table = self.calls
        lo = 0 if started_after is None else int(np.searchsorted(table.started, to_epoch(started_after), side="left"))
        hi = len(table) if started_before is None else int(np.searchsorted(table.started, to_epoch(started_before), side="left"))
        if cursor is not None:
            lo = max(lo, decode_cursor(cursor) + 1)
        now = to_epoch(self.now)
        rows: list[int] = []
        position = lo
        while position < hi and len(rows) < limit:
            chunk_end = min(hi, position + (limit - len(rows)) + 64)
            visible = np.flatnonzero(table.visible[position:chunk_end] <= now)
            take = visible[: limit - len(rows)]
            rows.extend(int(position + offset) for offset in take)
            position = chunk_end if len(take) == len(visible) else int(position + take[-1] + 1)
        agent_ids = [agent.id for agent in self.agents]
        data = [self._call_json(row, agent_ids) for row in rows]
        next_cursor = encode_cursor(rows[-1]) if rows and position < hi else None
        return data, next_cursor

    def _call_json(self, row: int, agent_ids: list[str]) -> dict[str, Any]:
        body = self.calls.row_json(row, self.numbers, agent_ids)
        if row in self.malformed_call_rows:
            body["cost"] = {"amount": 0.015, "currency": body["cost"]["currency"]}
        return body

    # -- the contract's writes ----------------------------------------------------------

    def get_number(self, number_id: str) -> SandboxNumber:
        number = self.number_by_id.get(number_id)
        if number is None:
            raise SandboxError(404, "not_found", f"no number {number_id[:60]}")
        return number

    def release(self, number_id: str, when: dt.datetime | None = None) -> SandboxNumber:
        number = self.get_number(number_id)
        if number.status != "released":
            number.status = "released"
            number.released_at = when or self.now
            number.assignments.clear()
            self.phone_numbers_in_use.discard(number.phone_number)
            number.touch()
            self._changed()
        return number

    def assign(self, number_id: str, agent_id: str, direction: str, when: dt.datetime | None = None) -> SandboxNumber:
        number = self.get_number(number_id)
        if number.status == "released":
            raise SandboxError(400, "invalid_request", "a released number cannot be assigned")
        if direction not in ("inbound", "outbound"):
            raise SandboxError(400, "invalid_request", "assignment_type must be inbound or outbound")
        agent = self.agent_by_id.get(agent_id)
        if agent is None:
            raise SandboxError(404, "not_found", f"no agent {agent_id[:60]}")
        if agent.status == "archived":
            raise SandboxError(400, "invalid_request", "an archived agent cannot take numbers")
        number.assignments[direction] = (agent_id, when or self.now)
        number.touch()
        self._changed()
        return number

    def unassign(self, number_id: str, direction: str) -> SandboxNumber:
        number = self.get_number(number_id)
        if direction not in ("inbound", "outbound"):
            raise SandboxError(400, "invalid_request", "assignment_type must be inbound or outbound")
        if number.assignments.pop(direction, None) is not None:
            number.touch()
            self._changed()
        return number

    def search(self, country_code: str, kind: str, area_code: str | None, count: int) -> list[dict[str, Any]]:
        from reconcile.sandbox.generator import COUNTRIES, PHONE_LENGTH, PRICES

        if kind not in ("local", "toll-free", "mobile"):
            raise SandboxError(400, "invalid_request", "phone_number_type must be local, toll-free or mobile")
        if country_code not in COUNTRIES:
            return []  # a well-formed country with nothing on offer (the contract: an empty list)
        currency, _, local, mobile, toll_free = COUNTRIES[country_code]
        prefixes = {"local": local, "mobile": mobile, "toll-free": toll_free}[kind]
        if area_code:
            if country_code not in ("US", "CA") or not re.fullmatch(r"[2-9][0-9]{2}", area_code):
                return []  # no NPA of that name (NPAs are US and Canada only): nothing on offer there
            prefixes = [f"+1{area_code}"]
        rng = random.Random(f"{self.seed}:{country_code}:{kind}:{area_code}:{self.days_advanced}")
        upfront, monthly = PRICES[(country_code, kind)]
        found: list[dict[str, Any]] = []
        while len(found) < count:
            prefix = rng.choice(prefixes)
            phone = prefix + "".join(rng.choice("0123456789") for _ in range(PHONE_LENGTH[country_code] - len(prefix)))
            if phone in self.phone_numbers_in_use or any(item["phone_number"] == phone for item in found):
                continue
            self.offered[phone] = (country_code, kind)
            found.append({
                "phone_number": phone,
                "phone_number_type": kind,
                "features": ["voice", "sms"] if kind != "toll-free" else ["voice"],
                "cost_information": {"upfront_cost": upfront, "monthly_cost": monthly, "currency": currency},
            })
        return found

    def purchase(self, phone_number: str, when: dt.datetime | None = None, label: str | None = None) -> SandboxNumber:
        from reconcile.sandbox.generator import COUNTRIES, PRICES

        if phone_number in self.phone_numbers_in_use:
            raise SandboxError(409, "conflict", "the number is already owned")
        offer = self.offered.get(phone_number)
        if offer is None:
            raise SandboxError(400, "invalid_request", "buy a number exactly as a search returned it")
        country, kind = offer
        upfront, monthly = PRICES[(country, kind)]
        bought = when or self.now
        number = SandboxNumber(
            id=f"num_{''.join(self._rng.choice('0123456789ABCDEFGHJKMNPQRSTVWXYZ') for _ in range(10))}",
            phone_number=phone_number,
            country_code=country,
            phone_number_type=kind,
            provider="truedy",
            features=["voice", "sms"] if kind != "toll-free" else ["voice"],
            upfront_cost=Decimal(upfront),
            currency=COUNTRIES[country][0],
            label=label,
            purchased_at=bought,
            cost_history=[(bought, Decimal(monthly))],
            intent="fresh",
        )
        del self.offered[phone_number]
        self.add_number(number)
        return number

    # -- evolution -------------------------------------------------------------------------

    def advance(self, days: int = 1, churn: float = 0.01, hours: float = 0) -> None:
        """Let time pass: each whole day buys, releases, reassigns, archives and calls."""
        with self.lock:
            for _ in range(days):
                self._one_day(churn)
            if hours:
                self._set_now(self.now + dt.timedelta(hours=hours))
            self._changed()

    def _one_day(self, churn: float) -> None:
        rng = random.Random(f"{self.seed}:day:{self.days_advanced}")
        start = self.now
        end = start + DAY

        def moment() -> dt.datetime:
            return start + dt.timedelta(seconds=rng.randint(60, 86340))

        for number in self.numbers:
            if number.status == "pending" and number.purchased_at <= start - DAY:
                number.status = "active"
                number.touch()
        live = [n for n in self.numbers if n.status != "released"]
        active_agents = [a for a in self.agents if a.status == "active"]
        moves = max(1, round(len(live) * churn / 3))
        # releases: mostly numbers that were doing nothing, some that were in use
        wasted = [n for n in live if n.intent in ("unassigned", "idle", "orphaned")]
        for _ in range(moves):
            pool = wasted if wasted and rng.random() < 0.7 else live
            victim = rng.choice(pool)
            if victim.status != "released":
                self.release(victim.id, moment())
        # purchases: half get an agent the same day, half are forgotten
        for _ in range(moves):
            country = rng.choice(("US", "US", "US", "GB", "DE"))
            kind = rng.choice(("local", "local", "mobile", "toll-free"))
            offer = self.search(country, kind, None, 1)[0]
            number = self.purchase(offer["phone_number"], moment())
            if rng.random() < 0.5 and active_agents:
                number.intent = "used"
                self.assign(number.id, rng.choice(active_agents).id, "outbound", number.purchased_at + dt.timedelta(minutes=5))
        # reassignments among numbers in use
        used = [n for n in self.numbers if n.intent == "used" and n.status == "active" and n.assignments]
        for number in rng.sample(used, min(len(used), max(1, moves // 2))):
            if active_agents:
                self.assign(number.id, rng.choice(active_agents).id, rng.choice(sorted(number.assignments)), moment())
        # a price change now and then
        if self.days_advanced % 3 == 1:
            managed = [n for n in self.numbers if n.status == "active" and n.is_truedy_managed]
            if managed:
                number = rng.choice(managed)
                number.cost_history.append((moment(), (number.monthly_cost or Decimal(0)) + Decimal("0.10")))
                number.touch()
        # an agent archived now and then: its numbers become orphaned
        if self.days_advanced % 4 == 2 and len(active_agents) > 4:
            agent = rng.choice(active_agents)
            agent.status = "archived"
            agent.archived_at = moment()
        self._place_calls(rng, start, end)
        self._set_now(end)
        self.days_advanced += 1

    def _place_calls(self, rng: random.Random, start: dt.datetime, end: dt.datetime) -> None:
        callers = [
            n for n in self.numbers
            if n.intent == "used" and n.status == "active" and any(
                self.agent_by_id[a].status == "active" for a, _ in n.assignments.values())
        ]
        if not callers:
            return
        gen = np.random.default_rng([self.seed, self.days_advanced])
        count = self.calls_per_day
        chosen = gen.integers(0, len(callers), size=count)
        agent_index = {agent.id: i for i, agent in enumerate(self.agents)}
        numbers = np.array([callers[i].index for i in chosen], dtype=np.int64)
        outbound = np.zeros(count, dtype=np.int8)
        agents = np.zeros(count, dtype=np.int32)
        currency = np.zeros(count, dtype=np.int8)
        for k, i in enumerate(chosen):
            number = callers[i]
            directions = [d for d, (a, _) in number.assignments.items() if self.agent_by_id[a].status == "active"]
            direction = directions[int(gen.integers(0, len(directions)))]
            outbound[k] = direction == "outbound"
            agents[k] = agent_index[number.assignments[direction][0]]
            currency[k] = CURRENCIES.index(number.currency)
        first = max(to_epoch(start), int(self.calls.started[-1]) + 1 if len(self.calls) else 0)
        started = first + gen.integers(0, max(1, to_epoch(end) - first - 60), size=count)
        duration = gen.integers(15, 1500, size=count).astype(np.int64)
        rates = np.array([CALL_RATE_UNITS[c] for c in CURRENCIES], dtype=np.int64)
        self.calls.append({
            "started": started,
            "duration": duration,
            "visible": started + duration + gen.integers(0, 900, size=count),
            "number": numbers,
            "agent": agents,
            "outbound": outbound,
            "cost_units": (duration + 59) // 60 * rates[currency],
            "currency": currency,
        })


def encode_cursor(row: int) -> str:
    return base64.urlsafe_b64encode(f"c1:{row}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, row = text.split(":", 1)
        if prefix != "c1":
            raise ValueError
        return int(row)
    except (ValueError, UnicodeDecodeError):
        raise SandboxError(400, "invalid_request", "cursor is not one this API issued") from None
