"""Lookups over the agents frame (as the store's `agents_as_of` returns it)."""

from __future__ import annotations

from typing import Any

import pandas as pd


def by_agent(agents: pd.DataFrame, column: str) -> dict[str, Any]:
    """agent_id -> one of its columns (name, status, metadata); empty when there are no agents."""
    if not len(agents):
        return {}
    return dict(zip(agents["agent_id"], agents[column], strict=True))
