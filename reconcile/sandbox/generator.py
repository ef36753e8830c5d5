"""A deterministic Truedy account: the same seed and size give the same account.

Numbers are drawn in behaviour categories so that every finding of the job has
examples: `used` (assigned, recent calls), `idle` (assigned, silent for weeks),
`unassigned`, `orphaned` (assigned only to archived agents), `fresh` (bought within
the grace period) and `released`. About a tenth are imported (twilio, telnyx). Labels
and agent names carry HTML, spreadsheet formulas and non-ASCII text. One phone number
is released and bought again under a new id. Calls cover the last 120 days.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import numpy as np

from reconcile.sandbox.account import Account
from reconcile.sandbox.model import (
    CALL_RATE_UNITS,
    CURRENCIES,
    CallTable,
    SandboxAgent,
    SandboxNumber,
    to_epoch,
)

DAY = dt.timedelta(days=1)
CALL_HISTORY_DAYS = 120

# country -> (currency, weight, local prefixes, mobile prefixes, toll-free prefixes)
COUNTRIES = {
    "US": ("USD", 0.70, ["+1212", "+1415", "+1312", "+1646", "+1737", "+1305", "+1206"], ["+1917", "+1347"], ["+1800", "+1833", "+1844"]),
    "GB": ("GBP", 0.15, ["+4420", "+44161", "+44131"], ["+447700", "+447911"], ["+44800", "+44808"]),
    "DE": ("EUR", 0.15, ["+4930", "+4940", "+4989"], ["+49151", "+49170"], ["+49800"]),
}
PHONE_LENGTH = {"US": 12, "GB": 13, "DE": 13}  # characters of E.164, "+" included
# (country, type) -> (upfront, monthly)
PRICES = {
    ("US", "local"): ("1.00", "1.15"), ("US", "mobile"): ("1.00", "1.50"), ("US", "toll-free"): ("2.00", "2.15"),
    ("GB", "local"): ("1.00", "1.20"), ("GB", "mobile"): ("1.00", "1.80"), ("GB", "toll-free"): ("2.00", "2.50"),
    ("DE", "local"): ("1.00", "1.10"), ("DE", "mobile"): ("1.00", "1.70"), ("DE", "toll-free"): ("2.00", "2.40"),
}
CATEGORIES = (("used", 0.55), ("idle", 0.12), ("unassigned", 0.10), ("orphaned", 0.06), ("fresh", 0.04), ("released", 0.13))
TEAMS = ("sales", "support", "collections", "marketing", "research")
OWNERS = ("ana", "ben", "chidi", "dana", "emeka", "fatima", "goran", "hana", "ivan", "julia", "kofi", "lena")
ODD_LABELS = (
    "<script>alert('label')</script>",
    "=HYPERLINK(\"http://evil.example\",\"click\")",
    "+1 campaign; =1+2",
    "-rotation pool",
    "@SUM(A1:A9)",
    "\tTabbed pool",
    "Zürich – Ünïcødé ☎ line",
    "Campaign \"Q3\", <b>bold</b> & co",
)


def generate_account(
    seed: int = 7,
    numbers: int = 500,
    calls: int | None = None,
    agents: int | None = None,
    start: dt.datetime | None = None,
) -> Account:
    """An account of about `numbers` active and released numbers, as of `start` (midnight UTC today by default)."""
    if start is None:
        start = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rng = random.Random(seed)
    n_agents = agents if agents is not None else max(12, numbers // 33)
    n_calls = calls if calls is not None else numbers * 10
    account = Account(seed=seed, now=start)
    _make_agents(account, rng, n_agents, start)
    _make_numbers(account, rng, numbers, start)
    account.calls = CallTable()
    if n_calls:
        account.calls.append(_make_calls(account, seed, n_calls, start))
    account.calls_per_day = max(1, n_calls // CALL_HISTORY_DAYS)
    account.reindex()
    return account


def _make_agents(account: Account, rng: random.Random, count: int, start: dt.datetime) -> None:
    for i in range(count):
        created = start - dt.timedelta(days=rng.randint(200, 900), seconds=rng.randint(0, 86399))
        archived = i % 8 == 3  # one agent in eight is archived
        metadata = {"team": TEAMS[i % len(TEAMS)]}
        if i % 6 != 5:  # one in six has no owner: its numbers go to the default list
            metadata["owner"] = f"{OWNERS[i % len(OWNERS)]}@example.com"
        name = f"{TEAMS[i % len(TEAMS)].title()} agent {i + 1}"
        if i % 17 == 4:
            name = ODD_LABELS[i % len(ODD_LABELS)] + " agent"
        account.add_agent(
            SandboxAgent(
                id=f"agt_{_token(rng, 10)}",
                name=name,
                status="archived" if archived else "active",
                created_at=created,
                archived_at=start - dt.timedelta(days=rng.randint(20, 150)) if archived else None,
                metadata=metadata,
            )
        )


def _make_numbers(account: Account, rng: random.Random, count: int, start: dt.datetime) -> None:
    active_agents = [a for a in account.agents if a.status == "active"]
    archived_agents = [a for a in account.agents if a.status == "archived"] or active_agents
    names, weights = zip(*CATEGORIES, strict=True)
    for i in range(count):
        category = rng.choices(names, weights)[0]
        country = rng.choices(list(COUNTRIES), [c[1] for c in COUNTRIES.values()])[0]
        kind = rng.choices(("local", "toll-free", "mobile"), (0.7, 0.15, 0.15))[0]
        provider = "truedy"
        if country in ("US", "GB") and rng.random() < 0.13:
            provider = rng.choice(("twilio", "twilio", "telnyx"))
        number = _new_number(account, rng, country, kind, provider, start, category)
        if category == "fresh":
            number.purchased_at = start - dt.timedelta(seconds=rng.randint(3600, 5 * 86400))
            if number.purchased_at > start - DAY:
                number.status = "pending"
        elif category in ("used", "idle", "orphaned"):
            number.purchased_at = start - dt.timedelta(days=rng.randint(70, 700), seconds=rng.randint(0, 86399))
            agents = archived_agents if category == "orphaned" else active_agents
            directions = rng.choice((["inbound"], ["outbound"], ["inbound", "outbound"]))
            latest = start - dt.timedelta(days=60 if category != "used" else 12)
            for direction in directions:
                agent = rng.choice(agents)
                assigned = number.purchased_at + (latest - number.purchased_at) * rng.random()
                number.assignments[direction] = (agent.id, assigned)
        elif category == "unassigned":
            number.purchased_at = start - dt.timedelta(days=rng.randint(15, 700), seconds=rng.randint(0, 86399))
        else:  # released
            number.purchased_at = start - dt.timedelta(days=rng.randint(60, 700), seconds=rng.randint(0, 86399))
            earliest = number.purchased_at + dt.timedelta(days=20)
            latest = start - DAY
            number.released_at = earliest + (latest - earliest) * rng.random()
            number.status = "released"
        if number.is_truedy_managed:
            number.cost_history = [(number.purchased_at, number.cost_history[0][1])]
        if i % 41 == 7:
            number.label = ODD_LABELS[(i // 41) % len(ODD_LABELS)]
        account.add_number(number)
    _reacquire_one(account, rng)


def _new_number(
    account: Account, rng: random.Random, country: str, kind: str, provider: str, start: dt.datetime, category: str
) -> SandboxNumber:
    currency, _, local, mobile, toll_free = COUNTRIES[country]
    prefix = rng.choice({"local": local, "mobile": mobile, "toll-free": toll_free}[kind])
    while True:
        phone = prefix + "".join(rng.choice("0123456789") for _ in range(PHONE_LENGTH[country] - len(prefix)))
        if phone not in account.phone_numbers_in_use:
            break
    upfront, monthly = PRICES[(country, kind)]
    managed = provider == "truedy"
    return SandboxNumber(
        id=f"num_{_token(rng, 10)}",
        phone_number=phone,
        country_code=country,
        phone_number_type=kind,
        provider=provider,
        features=["voice", "sms"] if kind != "toll-free" else ["voice"],
        upfront_cost=Decimal(upfront) if managed else None,
        currency=currency,
        label=rng.choice((None, None, f"{country} {kind} pool {rng.randint(1, 40)}", f"Campaign {rng.randint(100, 999)}")),
        purchased_at=start,
        cost_history=[(start, Decimal(monthly))] if managed else [],
        intent=category,
    )


def _reacquire_one(account: Account, rng: random.Random) -> None:
    """Buy one released phone number again under a new id (the same E.164, a new number)."""
    released = [(n.released_at, n) for n in account.numbers
                if n.status == "released" and n.is_truedy_managed and n.released_at is not None]
    if not released:
        return
    released_at, old = min(released, key=lambda pair: pair[0])
    again = SandboxNumber(
        id=f"num_{_token(rng, 10)}",
        phone_number=old.phone_number,
        country_code=old.country_code,
        phone_number_type=old.phone_number_type,
        provider="truedy",
        features=list(old.features),
        upfront_cost=old.upfront_cost,
        currency=old.currency,
        label="Re-acquired " + (old.label or "number"),
        purchased_at=released_at + dt.timedelta(days=3),
        cost_history=[(released_at + dt.timedelta(days=3), old.monthly_cost or Decimal("1.15"))],
        intent="unassigned",
    )
    account.add_number(again)


def _token(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(length))


def _make_calls(account: Account, seed: int, total: int, start: dt.datetime) -> dict[str, np.ndarray]:
    """Calls over the last 120 days, placed where each number's story allows them."""
    gen = np.random.default_rng(seed)
    now = to_epoch(start)
    history = now - CALL_HISTORY_DAYS * 86400
    agent_index = {agent.id: i for i, agent in enumerate(account.agents)}
    active_agents = np.array([i for i, a in enumerate(account.agents) if a.status == "active"], dtype=np.int32)
    n = len(account.numbers)
    lo = np.full(n, history, dtype=np.int64)
    hi = np.full(n, history, dtype=np.int64)  # hi <= lo: no calls
    weight = np.zeros(n)
    inbound_agent = np.full(n, -1, dtype=np.int32)
    outbound_agent = np.full(n, -1, dtype=np.int32)
    currency = np.zeros(n, dtype=np.int8)
    recent = []
    for i, number in enumerate(account.numbers):
        currency[i] = CURRENCIES.index(number.currency)
        for direction, target in (("inbound", inbound_agent), ("outbound", outbound_agent)):
            if direction in number.assignments:
                target[i] = agent_index[number.assignments[direction][0]]
        bought = max(history, to_epoch(number.purchased_at) + 60)
        if number.intent == "used":
            lo[i], hi[i], weight[i] = bought, now - 3 * 3600, 1.0
            recent.append(i)
        elif number.intent == "idle":
            lo[i], hi[i], weight[i] = bought, now - 50 * 86400, 0.3
        elif number.intent == "orphaned":
            lo[i], hi[i], weight[i] = bought, now - 60 * 86400, 0.3
        elif number.intent == "released" and number.released_at is not None:
            lo[i], hi[i], weight[i] = bought, to_epoch(number.released_at) - 3600, 0.5
        if hi[i] <= lo[i]:
            weight[i] = 0.0
    # every used number has one call in its last 20 days, the rest spread by weight
    recent_arr = np.array(recent, dtype=np.int64)
    guaranteed = recent_arr[: total]
    rest = max(0, total - len(guaranteed))
    web = rest // 50
    pick = gen.choice(n, size=rest - web, p=weight / weight.sum()) if weight.sum() > 0 and rest > web else np.zeros(0, dtype=np.int64)
    number_idx = np.concatenate([guaranteed, pick, np.full(web, -1)]).astype(np.int64)
    m = len(number_idx)
    safe = np.where(number_idx >= 0, number_idx, 0)
    low = np.where(number_idx >= 0, lo[safe], now - 90 * 86400)
    high = np.where(number_idx >= 0, hi[safe], now - 3600)
    low[: len(guaranteed)] = np.maximum(low[: len(guaranteed)], now - 20 * 86400)
    started = low + (gen.random(m) * np.maximum(high - low, 1)).astype(np.int64)
    duration = gen.integers(15, 1500, size=m).astype(np.int32)
    outbound = (gen.random(m) < 0.7).astype(np.int8)
    in_a = np.where(number_idx >= 0, inbound_agent[safe], -1)
    out_a = np.where(number_idx >= 0, outbound_agent[safe], -1)
    outbound = np.where(out_a < 0, 0, np.where(in_a < 0, 1, outbound)).astype(np.int8)
    agent = np.where(outbound == 1, out_a, in_a)
    fallback = active_agents[gen.integers(0, len(active_agents), size=m)] if len(active_agents) else np.zeros(m, dtype=np.int32)
    agent = np.where(agent < 0, fallback, agent)
    cur = np.where(number_idx >= 0, currency[safe], 0).astype(np.int8)
    rates = np.array([CALL_RATE_UNITS[c] for c in CURRENCIES], dtype=np.int64)
    minutes = (duration.astype(np.int64) + 59) // 60
    return {
        "started": started,
        "duration": duration,
        "visible": started + duration + gen.integers(0, 900, size=m),
        "number": number_idx,
        "agent": agent,
        "outbound": outbound,
        "cost_units": minutes * rates[cur],
        "currency": cur,
    }
