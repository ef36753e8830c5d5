"""The nightly review of one sync run: its flags (with the flag history) and the summary around them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine

from reconcile.analysis.digests import Routing, route
from reconcile.analysis.flags import FlagResult, evaluate_flags
from reconcile.analysis.history import plan_streaks
from reconcile.analysis.nightly import NightlySummary, changes_between, summarise
from reconcile.analysis.rules import RULES
from reconcile.config import Settings
from reconcile.errors import StoreError
from reconcile.store import flags as flag_store
from reconcile.store import inventory_copy, readers
from reconcile.store import keeps as keep_store
from reconcile.store import trend as trend_store
from reconcile.store.database import read_alongside, write_beside
from reconcile.store.readers import SyncRun
from reconcile.store.writer import get_state, set_state

TREND_RUNS = 90
NOT_REVIEWED = ("version_id", "row_hash", "source_hash", "features",  # version columns no flag or report reads
                "upfront_cost", "released_at", "valid_to_run")
LIVE = ("active", "pending")  # the numbers owned: flags and changes read no other version
UNROUTED = "unrouted_flagged"  # sync_state: the newest run's flagged numbers that no digest reaches


@dataclass
class Evaluation:
    """The flags of one run, with first-flagged times from the flag history."""

    run: SyncRun
    at: dt.datetime
    inventory: pd.DataFrame  # the versions of the numbers owned (LIVE) at the run
    agents: pd.DataFrame
    result: FlagResult
    version_ids: np.ndarray[Any, Any]  # the inventory's version ids, row by row (kept with its copy)
    newest: bool = False  # the newest complete run: what the store says now


def evaluate_run(settings: Settings, engine: Engine, as_of: dt.datetime | None = None,
                 record_history: bool = True) -> Evaluation:
    """Evaluate the flags for the newest complete run at or before `as_of`.

    When that run is the newest and not evaluated yet (and `as_of` is the run's own
    time), its flag streaks are recorded in the flag history (see `record_flags`).
    """
    with engine.connect() as connection:
        run = readers.latest_complete_run(connection, at=as_of)
        if run is None:
            when = f" at or before {as_of:%Y-%m-%dT%H:%M:%SZ}" if as_of else ""
            raise StoreError(f"no complete sync run{when} in the store: run `reconcile sync` first")
        newest = readers.latest_complete_run(connection)
    at = as_of or run.as_of

    def activity(connection: Connection) -> tuple[pd.DataFrame, dict[str, dt.datetime], frozenset[str]]:
        return (readers.last_calls(connection, before=at), flag_store.first_flagged_as_of(connection, run.id),
                keep_store.kept_ids(connection, at))

    with read_alongside(engine, activity, "reading the last calls") as reading:  # two reads, two cores
        with engine.connect() as connection:
            inventory, version_ids = inventory_copy.read_live(connection, run.id, LIVE, skip=NOT_REVIEWED)
            agents = readers.agents_as_of(connection, run.id)
        last_calls, first_flagged, kept = reading.result()
    flags = dataclasses.replace(settings.flags, protect_number_ids=settings.flags.protect_number_ids | kept)
    result = evaluate_flags(inventory, agents, last_calls, at, flags, settings.carrier_costs, first_flagged)
    evaluation = Evaluation(run, at, inventory, agents, result, version_ids,
                            newest=newest is not None and run.id == newest.id)
    if record_history:
        record_flags(settings, engine, evaluation)
    return evaluation


def record_flags(settings: Settings, engine: Engine, evaluation: Evaluation) -> None:
    """Record the evaluation's flag streaks in the flag history: only for the newest run, evaluated at its own
    time, once (`evaluate_run` does it unless told not to; the nightly report does it while its files are
    written alongside)."""
    run = evaluation.run
    if not evaluation.newest or evaluation.at != run.as_of:
        return
    with engine.begin() as connection:
        if run.id <= flag_store.last_evaluated_run(connection):
            return
        plan = plan_streaks(flag_store.open_streaks(connection), evaluation.result.inventory, settings.flags)
        flag_store.record_streaks(connection, plan, run.id, run.as_of)
        # what the next night patches, rather than read every version
        inventory_copy.keep(connection, run.id, evaluation.inventory, evaluation.version_ids, LIVE, NOT_REVIEWED)


def routing_of(settings: Settings, evaluation: Evaluation) -> Routing:
    """Who gets which flagged numbers of the evaluation (see `reconcile.analysis.digests.route`)."""
    notify = settings.notify
    return route(evaluation.result.flagged, evaluation.agents, notify.owner_metadata_key, notify.default_recipients,
                 notify.finance_recipients)


def phones(flagged: pd.DataFrame, number_ids: list[str]) -> list[str]:
    """The phone numbers of some flagged numbers, in the order given."""
    by_id = dict(zip(flagged["number_id"].tolist(), flagged["phone_number"].tolist(), strict=True))
    return [str(by_id.get(number_id) or number_id) for number_id in number_ids]


def summarise_run(settings: Settings, engine: Engine, evaluation: Evaluation,
                  record_history: bool = True) -> NightlySummary:
    """The nightly summary around an evaluation's flags (see `evaluate_run`): changes, trend, issues."""
    run = evaluation.run
    with engine.connect() as connection:
        complete = [r for r in readers.runs(connection, limit=TREND_RUNS + 50, status="complete") if r.id <= run.id]
    trend_runs = [r.id for r in complete[:TREND_RUNS]]

    def keep_totals(connection: Connection) -> None:  # the runs whose flags are final: each worked out once
        evaluated = flag_store.last_evaluated_run(connection)
        trend_store.keep(connection, [run_id for run_id in trend_runs if run_id <= evaluated])

    # the trend's totals are summed by the database on a thread, while the changes and routing are worked out
    with write_beside(engine, keep_totals, "run-totals") if record_history else nullcontext():
        with engine.connect() as connection:
            previous_run = readers.previous_complete_run(connection, run.id)
            previous_inventory = readers.changed_since(connection, previous_run.id, run.id) if previous_run else None
            events = flag_store.streak_events(connection, run.id)
            issues = readers.issues_for_run(connection, run.id)
            realised = flag_store.realised_savings(connection, until_run=run.id)
        changes = changes_between(previous_inventory, evaluation.inventory, events, run.id,
                                  previous_run.id if previous_run else None)
        unrouted = phones(evaluation.result.flagged, routing_of(settings, evaluation).unrouted)
    with engine.connect() as connection:
        trend = trend_store.trend(connection, trend_runs)
    summary = summarise(evaluation.result, run.id, previous_run.as_of if previous_run else None, changes,
                        evaluation.agents, issues, trend, realised)
    summary.unrouted = unrouted
    if record_history and evaluation.newest:
        with engine.begin() as connection:
            set_state(connection, UNROUTED, json.dumps({"run_id": run.id, "numbers": summary.unrouted}), run.id)
    return summary


def unrouted_now(engine: Engine) -> tuple[int, list[str]] | None:
    """The newest evaluated run's flagged numbers that no digest reaches: (run id, phone numbers)."""
    with engine.connect() as connection:
        value = get_state(connection, UNROUTED)
    if not value:
        return None
    stored = json.loads(value)
    return int(stored["run_id"]), [str(n) for n in stored["numbers"]]


def settings_view(settings: Settings) -> dict[str, Any]:
    """The settings the nightly page states (grace, threshold, each rule's recommended action)."""
    return {"grace_days": settings.flags.grace_days, "idle_days_threshold": settings.flags.idle_days_threshold,
            "rules": {name: rule.recommended_action for name, rule in RULES.items()}}
