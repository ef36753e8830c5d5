"""The nightly trend's figures, per run and currency: numbers owned, their monthly cost, flagged savings.

Working a run's figures out reads every version open at it: for 90 runs of 100,000
numbers that was seconds every night. A run's figures are final once its flags are (an
evaluation at or after it), so they are worked out once then and kept in `run_totals`.
The trend reads what is kept, and works out only the runs that have nothing kept yet
(the newest, before its evaluation; runs from before the table).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Connection, insert, select

from reconcile.store import flags as flag_store
from reconcile.store import readers
from reconcile.store.schema import run_totals, sync_runs

COLUMNS = ["run_id", "as_of", "currency", "numbers", "monthly_cost", "waste"]


def work_out(connection: Connection, run_ids: list[int]) -> pd.DataFrame:
    """The runs' figures from their versions and the flag history (waste None where nothing was flagged).

    The waste is the flag streaks open at each run, at each streak's latest saving: final
    for a run once it is evaluated, which is when `keep` is asked to keep it.
    """
    totals = readers.inventory_totals_by_run(connection, run_ids)
    waste = flag_store.waste_by_run(connection, run_ids)
    figures = totals.merge(waste[["run_id", "currency", "waste"]], on=["run_id", "currency"], how="left")
    figures["waste"] = pd.Series([value if isinstance(value, Decimal) else None for value in figures["waste"]],
                                 index=figures.index, dtype=object)
    return figures[COLUMNS]


def keep(connection: Connection, run_ids: list[int]) -> None:
    """Work out and keep the figures of those runs that have none kept.

    Only for runs whose flags are final (at or before the last evaluated run).
    """
    if not run_ids:
        return
    kept = set(connection.execute(select(run_totals.c.run_id).where(run_totals.c.run_id.in_(run_ids))).scalars())
    missing = [run_id for run_id in run_ids if run_id not in kept]
    if not missing:
        return
    figures = work_out(connection, missing)
    if len(figures):
        connection.execute(insert(run_totals), [
            {"run_id": int(run_id), "currency": currency, "numbers": int(numbers), "monthly_cost": cost,
             "waste": waste}
            for run_id, currency, numbers, cost, waste in figures[
                ["run_id", "currency", "numbers", "monthly_cost", "waste"]].itertuples(index=False, name=None)])


def trend(connection: Connection, run_ids: list[int]) -> pd.DataFrame:
    """Per run of `run_ids` and currency, by run and currency: COLUMNS, waste 0 where nothing was flagged."""
    query = (select(run_totals.c.run_id, sync_runs.c.as_of, run_totals.c.currency, run_totals.c.numbers,
                    run_totals.c.monthly_cost, run_totals.c.waste)
             .join(sync_runs, sync_runs.c.id == run_totals.c.run_id).where(run_totals.c.run_id.in_(run_ids)))
    rows: list[Any] = [tuple(row) for row in connection.execute(query)] if run_ids else []
    kept = {row[0] for row in rows}
    missing = [run_id for run_id in run_ids if run_id not in kept]
    if missing:
        rows += list(work_out(connection, missing).itertuples(index=False, name=None))
    rows.sort(key=lambda row: (row[0], row[2]))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["waste"] = pd.Series([value if isinstance(value, Decimal) else Decimal(0) for value in frame["waste"]],
                               index=frame.index, dtype=object)
    return frame
