"""Ground truth: what the job must find in a sandbox account, computed the plain way.

Deliberately written as a direct loop over the sandbox's own state, apart from the
job's DataFrame rules, so that tests compare two independent readings of the flag rules (docs/design.md).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from reconcile.sandbox.billing import InvoiceError, billing_for
from reconcile.sandbox.model import from_epoch, to_epoch

if TYPE_CHECKING:
    from reconcile.sandbox.account import Account


def last_calls(account: Account, as_of: dt.datetime) -> dict[int, dt.datetime]:
    """Number index -> start of its latest call visible at `as_of`."""
    table = account.calls
    now = to_epoch(as_of)
    mask = (table.visible <= now) & (table.number >= 0)
    latest = np.full(len(account.numbers), -1, dtype=np.int64)
    np.maximum.at(latest, table.number[mask], table.started[mask])
    return {int(i): from_epoch(int(latest[i])) for i in np.flatnonzero(latest >= 0)}


def expected_flags(
    account: Account,
    grace_days: int = 7,
    idle_days_threshold: int = 30,
    protect_number_ids: Iterable[str] = (),
    protect_label_pattern: str = "",
) -> dict[str, str]:
    """Number id -> flag, for the account as it is now."""
    as_of = account.now
    protected = set(protect_number_ids)
    pattern = re.compile(protect_label_pattern) if protect_label_pattern else None
    last = last_calls(account, as_of)
    flags = {}
    for number in account.numbers:
        if number.status not in ("active", "pending") or number.id in account.malformed_number_ids:
            continue
        if number.id in protected or (pattern and number.label and pattern.search(number.label)):
            continue
        old_enough = number.purchased_at <= as_of - dt.timedelta(days=grace_days)
        if not number.assignments:
            if old_enough:
                flags[number.id] = "unassigned"
            continue
        agents = [account.agent_by_id.get(agent_id) for agent_id, _ in number.assignments.values()]
        if all(agent is None or agent.status == "archived" for agent in agents):
            if old_enough:
                flags[number.id] = "orphaned_agent"
            continue
        activity = [number.purchased_at] + [at for _, at in number.assignments.values()]
        if number.index in last:
            activity.append(last[number.index])
        idle_days = (as_of - max(activity)).days
        if idle_days >= idle_days_threshold:
            flags[number.id] = "idle"
    return flags


def invoice_errors(account: Account) -> list[InvoiceError]:
    return list(billing_for(account).errors)
