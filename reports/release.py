"""A release plan as files: release-plan-ID.csv (one row per number, with its evidence) and .html."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reconcile.analysis.nightly import totals_by_currency
from reconcile.clock import format_timestamp
from reconcile.money import format_display
from reconcile.reports.csvfile import write_frame_csv
from reconcile.reports.environment import environment
from reconcile.reports.output import report_folder
from reconcile.store.releases import Item, Plan

PLAN_COLUMNS = ["number_id", "phone_number", "flag", "reason", "monthly_cost", "currency", "first_flagged_at",
                "last_call_at", "inbound_agent_id", "outbound_agent_id", "state", "detail"]


def render_plan(plan: Plan, items: list[Item], imported: pd.DataFrame, out_dir: Path) -> tuple[Path, Path]:
    names = (f"release-plan-{plan.id}.csv", f"release-plan-{plan.id}.html")
    frame = pd.DataFrame([{name: getattr(item, name) for name in PLAN_COLUMNS} for item in items],
                         columns=PLAN_COLUMNS)
    with report_folder(out_dir, "release plan", names) as staging:
        write_frame_csv(staging / names[0], frame, PLAN_COLUMNS)
        totals = totals_by_currency([i.monthly_cost for i in items], [i.currency for i in items]) if items else []
        html = environment().get_template("release_plan.html.j2").render(
            plan=plan, items=items, totals=totals, imported=imported.to_dict("records"),
            money=format_display, ts=format_timestamp)
        (staging / names[1]).write_text(html, encoding="utf-8")
    return out_dir / names[0], out_dir / names[1]
