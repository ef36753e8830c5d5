"""The flag history: streaks opened, carried on and resolved, each night."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
from sqlalchemy import select

from reconcile.analysis.history import OpenStreak, plan_streaks
from reconcile.config import load_settings
from reconcile.store.schema import flag_history
from tests.test_trend import night


def test_a_plan_rewrites_only_the_streaks_whose_flag_or_saving_changed():
    settings = load_settings(environ={}).flags
    open_streaks = {"same": OpenStreak(1, "idle", Decimal("1.00"), "USD"),
                    "repriced": OpenStreak(2, "unassigned", Decimal("2.00"), "USD"),
                    "reflagged": OpenStreak(3, "idle", Decimal("3.00"), "EUR"),
                    "gone": OpenStreak(4, "idle", Decimal("4.00"), "USD")}
    inventory = pd.DataFrame({
        "number_id": ["same", "repriced", "reflagged", "new", "gone", "unknown"],
        "flag": ["idle", "unassigned", "orphaned_agent", "idle", "", "unassigned"],
        "monthly_savings": [Decimal("1.0"), Decimal("2.50"), Decimal("3.00"), Decimal("5.00"), None, None],
        "savings_currency": pd.Series(["USD", "USD", "EUR", "GBP", "USD", None], dtype="str"),  # NaN, pandas' blank
        "protected": [False] * 6, "idle_days": [90, 0, 0, 90, 3, 0], "has_active_agent": [True] * 6,
    })
    plan = plan_streaks(open_streaks, inventory, settings)
    assert plan.continued == [
        {"id": 2, "flag": "unassigned", "monthly_savings": Decimal("2.50"), "currency": "USD"},
        {"id": 3, "flag": "orphaned_agent", "monthly_savings": Decimal("3.00"), "currency": "EUR"}]
    assert plan.new == [{"number_id": "new", "flag": "idle", "monthly_savings": Decimal("5.00"), "currency": "GBP"},
                        {"number_id": "unknown", "flag": "unassigned", "monthly_savings": None, "currency": None}]
    assert plan.resolved == [(4, "used_again")]


def test_every_streak_still_flagged_goes_on_to_the_newest_run(make_sandbox, make_client, store, tmp_path):
    server = make_sandbox(numbers=150)
    first = night(server, store, make_client, tmp_path)
    server.account.advance(days=1)
    second = night(server, store, make_client, tmp_path)
    flagged_twice = set(first.result.flagged["number_id"]) & set(second.result.flagged["number_id"])
    assert flagged_twice
    with store.connect() as c:
        streaks = c.execute(select(flag_history.c.number_id, flag_history.c.first_flagged_run,
                                   flag_history.c.last_flagged_run, flag_history.c.resolved_run)).all()
    open_ones = {number_id: (first_run, last_run) for number_id, first_run, last_run, resolved in streaks
                 if resolved is None}
    assert set(open_ones) == set(second.result.flagged["number_id"])
    assert all(last_run == second.summary.run_id for _, last_run in open_ones.values())
    assert all(open_ones[n][0] == first.summary.run_id for n in flagged_twice)
    assert all(last_run == first.summary.run_id for number_id, _, last_run, resolved in streaks
               if resolved == second.summary.run_id)
