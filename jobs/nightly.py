"""The nightly job: sync, then the nightly report from the store."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from jobs.runtime import make_client, open_store, sync_options
from reconcile.analysis.flags import FlagResult, evaluate_flags
from reconcile.analysis.history import plan_streaks
from reconcile.analysis.nightly import NightlySummary, changes_between, summarise
from reconcile.analysis.rules import RULES
from reconcile.clock import Clock
from reconcile.config import Settings
from reconcile.errors import StoreError
from reconcile.progress import Progress, progress_for
from reconcile.store import flags as flag_store
from reconcile.store import readers
from reconcile.store.readers import SyncRun
from reconcile.sync import SyncSummary, run_sync
from reports.nightly import NightlyFiles, render_nightly

log = logging.getLogger("reconcile.nightly")
TREND_RUNS = 90


@dataclass
class NightlyOutcome:
    sync: SyncSummary | None
    summary: NightlySummary
    result: FlagResult
    files: NightlyFiles

    def line(self) -> str:
        s = self.summary
        savings = ", ".join(f"{t.amount:,.2f} {t.currency}" for t in s.savings) or "nothing"
        return (f"nightly report as of {s.as_of:%Y-%m-%d %H:%M}Z: {s.owned:,} numbers, {s.flagged:,} flagged "
                f"(saving {savings} a month), written to {self.files.directory}")


def default_out_dir(settings: Settings, as_of: dt.datetime) -> Path:
    return settings.reports_dir / f"nightly-{as_of:%Y-%m-%d}"


@dataclass
class Evaluation:
    """The flags of one run, with first-flagged times from the (updated) flag history."""

    run: SyncRun
    at: dt.datetime
    inventory: pd.DataFrame
    agents: pd.DataFrame
    result: FlagResult


def evaluate_run(settings: Settings, engine: Engine, as_of: dt.datetime | None = None,
                 record_history: bool = True) -> Evaluation:
    """Evaluate the flags for the newest complete run at or before `as_of`.

    When that run is the newest and not evaluated yet (and `as_of` is the run's own
    time), the flag streaks are recorded first, so `first_flagged_at` includes them.
    """
    with engine.connect() as connection:
        run = readers.latest_complete_run(connection, at=as_of)
        if run is None:
            when = f" at or before {as_of:%Y-%m-%dT%H:%M:%SZ}" if as_of else ""
            raise StoreError(f"no complete sync run{when} in the store: run `reconcile sync` first")
        newest = readers.latest_complete_run(connection)
        at = as_of or run.as_of
        inventory = readers.inventory_as_of(connection, run.id)
        agents = readers.agents_as_of(connection, run.id)
        last_calls = readers.last_calls(connection, before=at)
        evaluated = flag_store.last_evaluated_run(connection)
    result = evaluate_flags(inventory, agents, last_calls, at, settings.flags, settings.carrier_costs)
    if record_history and newest is not None and run.id == newest.id and run.id > evaluated and at == run.as_of:
        with engine.begin() as connection:
            plan = plan_streaks(flag_store.open_streaks(connection), result.inventory,
                                settings.flags.enabled_rules, settings.flags.idle_days_threshold)
            flag_store.record_streaks(connection, plan, run.id, run.as_of)
    with engine.connect() as connection:
        first = flag_store.first_flagged_as_of(connection, run.id)
    result.flagged["first_flagged_at"] = result.flagged["number_id"].map(lambda n: first.get(n, at))
    return Evaluation(run, at, inventory, agents, result)


def build_nightly(settings: Settings, engine: Engine, as_of: dt.datetime | None = None,
                  record_history: bool = True) -> tuple[NightlySummary, FlagResult]:
    """The flags of a run (see `evaluate_run`) and the nightly summary around them."""
    evaluation = evaluate_run(settings, engine, as_of, record_history)
    run = evaluation.run
    with engine.connect() as connection:
        complete = [r for r in readers.runs(connection, limit=TREND_RUNS + 50, status="complete") if r.id <= run.id]
        previous_run = readers.previous_complete_run(connection, run.id)
        previous_inventory = readers.changed_since(connection, previous_run.id, run.id) if previous_run else None
        events = flag_store.streak_events(connection, run.id)
        trend = _trend(connection, [r.id for r in complete[:TREND_RUNS]])
        issues = readers.issues_for_run(connection, run.id)
        realised = flag_store.realised_savings(connection, until_run=run.id)
    changes = changes_between(previous_inventory, evaluation.inventory, events, run.id,
                              previous_run.id if previous_run else None)
    summary = summarise(evaluation.result, run.id, previous_run.as_of if previous_run else None, changes,
                        evaluation.agents, issues, trend, realised)
    return summary, evaluation.result


def _trend(connection: Any, run_ids: list[int]) -> pd.DataFrame:
    """Per run and currency: numbers, monthly cost and flagged monthly savings."""
    totals = readers.inventory_totals_by_run(connection, run_ids)
    waste = flag_store.waste_by_run(connection, run_ids)
    trend = totals.merge(waste[["run_id", "currency", "waste"]], on=["run_id", "currency"], how="left")
    trend["waste"] = [value if isinstance(value, Decimal) else Decimal(0) for value in trend["waste"]]
    return trend


def settings_view(settings: Settings) -> dict[str, Any]:
    return {"grace_days": settings.flags.grace_days, "idle_days_threshold": settings.flags.idle_days_threshold,
            "rules": {name: rule.recommended_action for name, rule in RULES.items()}}


def report_nightly(settings: Settings, engine: Engine, as_of: dt.datetime | None = None,
                   out_dir: Path | None = None) -> tuple[NightlySummary, FlagResult, NightlyFiles]:
    summary, result = build_nightly(settings, engine, as_of)
    files = render_nightly(summary, result, settings_view(settings), out_dir or default_out_dir(settings, summary.as_of))
    return summary, result, files


def run_nightly(settings: Settings, clock: Clock, progress: Progress | None = None,
                engine: Engine | None = None, out_dir: Path | None = None) -> NightlyOutcome:
    """The whole nightly job: sync, then the report as of the sync. The caller holds the run lock."""
    engine = engine or open_store(settings)
    with make_client(settings) as client:
        sync = run_sync(client, engine, clock=clock, options=sync_options(settings), progress=progress or progress_for())
        log.info(sync.line())
        summary, result, files = report_nightly(settings, engine, None, out_dir)
    return NightlyOutcome(sync, summary, result, files)
