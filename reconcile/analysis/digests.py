"""Who gets which flagged numbers, and what each digest holds. Pure.

Routing: a number goes to the owners of its agents (the agent metadata key from
config, e.g. `owner`), when that value is a plain e-mail address; a number with no
such owner goes to every default recipient; finance recipients get every flagged
number. A recipient in several roles gets one digest with the union. A number with no
owner while there is no default recipient is unrouted: it is named, never dropped silently.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd

from reconcile.addresses import is_email
from reconcile.analysis.agents import by_agent
from reconcile.analysis.nightly import CurrencyTotal, totals_by_currency


@dataclass
class Routing:
    numbers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # recipient -> number ids
    roles: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))    # recipient -> roles
    bad_owner_values: int = 0
    unrouted: list[str] = field(default_factory=list)  # flagged numbers no owner and no default recipient gets


UNROUTED_HINT = ("no owner in their agents' metadata and notify.default_recipients is empty: set "
                 "notify.default_recipients (or an owner on the agents) so that someone is told")


@dataclass
class Digest:
    recipient: str
    roles: tuple[str, ...]
    rows: pd.DataFrame                 # flagged rows, most expensive first
    new_ids: frozenset[str]
    totals: list[CurrencyTotal]
    unknown_savings: int               # imported numbers without a configured carrier cost
    first: bool = False                # the recipient never had a digest before

    @property
    def count(self) -> int:
        return len(self.rows)


def route(flagged: pd.DataFrame, agents: pd.DataFrame, owner_key: str, default_recipients: Iterable[str],
          finance_recipients: Iterable[str]) -> Routing:
    metadata = by_agent(agents, "metadata")
    routing = Routing()
    defaults = tuple(default_recipients)
    known: dict[tuple[Any, Any], tuple[set[str], int]] = {}  # agent pairs repeat: each one's owners read once
    for number_id, pair in zip(flagged["number_id"].tolist(), zip(
            flagged["inbound_agent_id"].tolist(), flagged["outbound_agent_id"].tolist(), strict=True), strict=True):
        found = known.get(pair)
        if found is None:
            found = known[pair] = _owners(pair, metadata, owner_key)
        owners, bad = found
        routing.bad_owner_values += bad
        for owner in owners:
            routing.numbers[owner].add(number_id)
            routing.roles[owner].add("owner")
        if not owners:
            for recipient in defaults:
                routing.numbers[recipient].add(number_id)
                routing.roles[recipient].add("default")
            if not defaults:
                routing.unrouted.append(number_id)
    for recipient in finance_recipients:
        routing.numbers[recipient].update(flagged["number_id"].tolist())
        routing.roles[recipient].add("finance")
    return routing


def _owners(agent_ids: tuple[Any, Any], metadata: Mapping[str, dict[str, Any]], owner_key: str) -> tuple[set[str], int]:
    """The owners named in a number's agents' metadata (e-mail addresses, lower case), and how many values
    under `owner_key` were not an address."""
    owners, bad = set(), 0
    for agent_id in agent_ids:
        value = metadata.get(agent_id, {}).get(owner_key) if isinstance(agent_id, str) else None
        if value is None:
            continue
        if is_email(value.strip()):
            owners.add(value.strip().lower())
        else:
            bad += 1
    return owners, bad


def unrouted_line(numbers: list[str], shown: int = 10) -> str:
    """The flagged numbers no digest reaches, named (the first `shown`), with the setting that fixes it."""
    more = f" and {len(numbers) - shown} more" if len(numbers) > shown else ""
    return f"{len(numbers)} flagged number(s) reach nobody ({', '.join(numbers[:shown])}{more}): {UNROUTED_HINT}"


def build_digests(flagged: pd.DataFrame, routing: Routing, previous: Mapping[str, set[str]]) -> list[Digest]:
    """One digest per recipient with something flagged; `previous` holds each one's last digest's ids."""
    by_id = flagged.set_index("number_id", drop=False)
    digests = []
    for recipient in sorted(routing.numbers):
        ids = routing.numbers[recipient]
        if not ids:
            continue
        rows = by_id.loc[sorted(ids)]
        savings, numbers = rows["monthly_savings"].tolist(), rows["number_id"].tolist()
        order = sorted(range(len(rows)), key=lambda i: (-_amount(savings[i]), numbers[i]))
        rows = rows.iloc[order].reset_index(drop=True)
        seen = previous.get(recipient)
        digests.append(Digest(
            recipient=recipient,
            roles=tuple(sorted(routing.roles[recipient])),
            rows=rows,
            new_ids=frozenset(ids - (seen or set())),
            totals=totals_by_currency(rows["monthly_savings"], rows["currency"]),
            unknown_savings=int((rows["savings_basis"] == "unknown").sum()),
            first=seen is None,
        ))
    return digests


def _amount(saving: object) -> Decimal:
    return saving if isinstance(saving, Decimal) else Decimal(-1)
