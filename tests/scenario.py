"""Golden scenarios: a folder holds account.toml (the account the sandbox serves),
optionally config.toml (layered over the defaults), and flagged.csv (the report it
must produce, checked by hand once). Times in account.toml are relative to `as_of`:
"-7d", "-29d23h", "-2h", or absolute RFC 3339.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from decimal import Decimal
from pathlib import Path

import numpy as np

from reconcile.clock import parse_timestamp
from reconcile.sandbox.account import Account
from reconcile.sandbox.model import CURRENCIES, CallTable, SandboxAgent, SandboxNumber, to_epoch

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def when(text: str, as_of: dt.datetime) -> dt.datetime:
    match = re.fullmatch(r"-(?:(\d+)d)?(?:(\d+)h)?", text)
    if match and text != "-":
        return as_of - dt.timedelta(days=int(match[1] or 0), hours=int(match[2] or 0))
    return parse_timestamp(text)


def load_account(folder: Path) -> Account:
    spec = tomllib.loads((folder / "account.toml").read_text())
    as_of = parse_timestamp(spec["as_of"])
    account = Account(seed=0, now=as_of)
    for a in spec.get("agents", []):
        account.add_agent(SandboxAgent(
            id=a["id"], name=a.get("name", a["id"]), status=a.get("status", "active"),
            created_at=as_of - dt.timedelta(days=400),
            archived_at=when(a["archived"], as_of) if "archived" in a else None, metadata=a.get("metadata", {})))
    calls = []
    for n in spec["numbers"]:
        provider = n.get("provider", "truedy")
        purchased = when(n["purchased"], as_of)
        monthly = n.get("monthly", "1.15")
        number = SandboxNumber(
            id=n["id"], phone_number=n["phone"], country_code=n.get("country", "US"),
            phone_number_type=n.get("type", "local"), provider=provider, features=["voice"],
            upfront_cost=Decimal("1.00") if provider == "truedy" else None, currency=n.get("currency", "USD"),
            label=n.get("label"), purchased_at=purchased, status=n.get("status", "active"),
            cost_history=[(purchased, Decimal(monthly))] if provider == "truedy" else [])
        if "released" in n:
            number.status, number.released_at = "released", when(n["released"], as_of)
        for direction in ("inbound", "outbound"):
            if direction in n:
                agent_id, _, at = n[direction].partition("@")
                number.assignments[direction] = (agent_id, when(at or n["purchased"], as_of))
        account.add_number(number)
        agent_index = {a.id: i for i, a in enumerate(account.agents)}
        for call in n.get("calls", []):
            direction = "outbound" if "outbound" in number.assignments else "inbound"
            agent = number.assignments.get(direction, (account.agents[0].id, None))[0]
            calls.append((to_epoch(when(call, as_of)), number.index, agent_index.get(agent, 0),
                          direction == "outbound", CURRENCIES.index(number.currency)))
    calls.sort()
    account.calls = CallTable()
    if calls:
        started = np.array([c[0] for c in calls])
        account.calls.append({
            "started": started, "duration": np.full(len(calls), 60), "visible": started + 60,
            "number": np.array([c[1] for c in calls]), "agent": np.array([c[2] for c in calls]),
            "outbound": np.array([c[3] for c in calls]), "cost_units": np.full(len(calls), 150),
            "currency": np.array([c[4] for c in calls])})
    account.reindex()
    return account


def scenario_names() -> list[str]:
    return sorted(p.name for p in SCENARIOS.iterdir() if (p / "account.toml").exists())
