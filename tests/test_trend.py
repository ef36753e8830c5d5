"""The nightly trend's figures: kept once a run's flags are final, each as it was at its run."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from sqlalchemy import func, select

from reconcile.config import load_settings
from reconcile.jobs.nightly import report_nightly
from reconcile.store import readers
from reconcile.store import trend as trend_store
from reconcile.store.schema import run_totals
from reconcile.sync import SyncOptions, run_sync


def night(server, store, make_client, tmp_path):
    """Sync, then the nightly report: the outcome, and the trend the page drew."""
    run_sync(make_client(server), store, clock=lambda: server.account.now, options=SyncOptions(call_slices=1))
    settings = dataclasses.replace(load_settings(environ={}), reports_dir=tmp_path / "reports")
    return report_nightly(settings, store)


def by_run(trend) -> dict[int, dict[str, tuple[int, Decimal | None, Decimal]]]:
    figures: dict[int, dict[str, tuple[int, Decimal | None, Decimal]]] = {}
    for run_id, _, currency, numbers, cost, waste in trend.itertuples(index=False, name=None):
        figures.setdefault(run_id, {})[currency] = (numbers, cost, waste)
    return figures


def test_each_evaluated_run_keeps_the_figures_it_worked_out(make_sandbox, make_client, store, tmp_path):
    server = make_sandbox(numbers=150)
    for _ in range(3):
        outcome = night(server, store, make_client, tmp_path)
        run_id = outcome.summary.run_id
        with store.connect() as c:
            worked_out = trend_store.work_out(c, [run_id])  # from the versions and the streaks, now
            shown = trend_store.trend(c, [run_id])           # what the page drew: the kept figures
            kept_rows = c.execute(select(func.count()).select_from(run_totals)
                                  .where(run_totals.c.run_id == run_id)).scalar()
        assert kept_rows == len(worked_out) > 0
        worked_out["waste"] = [w if w is not None else Decimal(0) for w in worked_out["waste"]]
        assert by_run(shown) == by_run(worked_out)
        # the page's own figures: numbers owned and flagged savings, per currency
        figures = by_run(outcome.summary.trend)[run_id]
        assert sum(n for n, _, _ in figures.values()) == outcome.summary.owned
        truedy = {t.currency: t.amount for t in outcome.summary.savings if t.currency in figures}
        assert {c: w for c, (_, _, w) in figures.items() if w} == {c: a for c, a in truedy.items() if a}
        server.account.advance(days=1)


def test_a_past_run_keeps_its_waste_when_a_flagged_number_is_repriced(make_sandbox, make_client, store, tmp_path):
    """The trend is history: a price change tonight does not rewrite what last night's flags would have saved."""
    server = make_sandbox(numbers=150)
    first = night(server, store, make_client, tmp_path)
    flagged = first.result.flagged
    managed = flagged[(flagged["savings_basis"] == "truedy_fee")]
    number_id, currency = managed["number_id"].iloc[0], managed["currency"].iloc[0]
    number = next(n for n in server.account.numbers if n.id == number_id)
    number.cost_history.append((server.account.now, number.monthly_cost + Decimal("5.00")))
    number.touch()
    server.account.advance(hours=2)
    second = night(server, store, make_client, tmp_path)
    assert number_id in set(second.result.flagged["number_id"])
    with store.connect() as c:
        runs = [r.id for r in readers.runs(c, status="complete")]
        shown = by_run(trend_store.trend(c, runs))
        worked_out_now = by_run(trend_store.work_out(c, [first.summary.run_id]))
    before = {t.currency: t.amount for t in first.summary.savings}[currency]
    after = {t.currency: t.amount for t in second.summary.savings}[currency]
    assert after - before == Decimal("5.00")
    assert shown[first.summary.run_id][currency][2] == before, "last night's waste, at last night's prices"
    assert shown[second.summary.run_id][currency][2] == after
    assert worked_out_now[first.summary.run_id][currency][2] == after, "the streak carries its newest saving"
