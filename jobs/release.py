"""`reconcile release plan` and `release apply`: flagged numbers released on a date, unless kept, safely.

Planning reads only the store. Applying asks the Truedy API about each number again
before acting, journals every number's state in the store before and after each call,
never retries a write blindly (a failed or lost answer is followed by a read-back), and
stops at the cap. A rerun after a kill resumes from the journal: a number is never
released twice and never skipped without a reason.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import EmailMessage
from html import escape
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from reconcile.analysis.agents import by_agent
from reconcile.analysis.digests import route
from reconcile.analysis.nightly import CurrencyTotal, totals_by_currency
from reconcile.clock import Clock, format_timestamp
from reconcile.config import Settings
from reconcile.delivery import deliver_once
from reconcile.errors import AuthError, ConfigError, ReconcileError, StoreError, UpstreamError
from reconcile.jobs.runtime import make_client
from reconcile.mail import build_message, message_id_for, transport_for
from reconcile.money import format_money
from reconcile.releases import Criteria, Decision, Planned, choose, decide
from reconcile.reports.release import render_plan
from reconcile.review.nightly import evaluate_run
from reconcile.store import keeps as keep_store
from reconcile.store import readers
from reconcile.store import releases as plans
from reconcile.truedy.client import TruedyClient

log = logging.getLogger("reconcile.release")


@dataclass
class PlanOutcome:
    plan_id: int
    release_on: dt.date
    count: int
    savings: list[CurrencyTotal]
    imported: int
    files: tuple[Path, Path]

    def line(self) -> str:
        saving = ", ".join(format_money(t.amount, t.currency) for t in self.savings) or "nothing"
        apart = f"; {self.imported} imported number(s) listed apart (release them at their carrier)" if self.imported else ""
        return (f"release plan {self.plan_id}: {self.count} number(s), saving {saving} a month, to be released on "
                f"{self.release_on} unless kept{apart}; written to {self.files[0].parent}")


def plan_release(settings: Settings, engine: Engine, clock: Clock, criteria: Criteria, by: str,
                 release_on: dt.date | None = None) -> PlanOutcome:
    """A plan from the newest complete run's flags (protected and kept numbers are never flagged)."""
    for rule in criteria.rules:
        if rule not in ("unassigned", "orphaned_agent", "idle"):
            raise ConfigError(f"--rules: no rule {rule!r}; allowed: unassigned, orphaned_agent, idle")
    now = clock()
    evaluation = evaluate_run(settings, engine, record_history=False)
    chosen, imported = choose(evaluation.result.flagged, criteria, evaluation.run.as_of)
    day = release_on or (now + dt.timedelta(days=settings.release.notice_days)).date()
    items = [{
        "number_id": row["number_id"], "phone_number": row["phone_number"], "flag": row["flag"],
        "reason": row["reason"], "monthly_cost": _money(row["monthly_savings"]), "currency": row["currency"] or None,
        "first_flagged_at": _time(row["first_flagged_at"]), "last_call_at": _time(row["last_call_at"]),
        "inbound_agent_id": _text(row["inbound_agent_id"]), "outbound_agent_id": _text(row["outbound_agent_id"]),
    } for row in chosen.to_dict("records")]
    plan_id = plans.create(engine, created_at=now, created_by=by, sync_run_id=evaluation.run.id, release_on=day,
                           criteria=criteria.as_dict(), items=items)
    stored = plans.plan(engine, plan_id)
    if stored is None:
        raise StoreError(f"release plan {plan_id} was written but cannot be read back")
    files = render_plan(stored[0], stored[1], imported, settings.reports_dir / f"release-plan-{plan_id}")
    savings = totals_by_currency(chosen["monthly_savings"], chosen["currency"]) if len(chosen) else []
    return PlanOutcome(plan_id, day, len(items), savings, len(imported), files)


def _money(value: object) -> Decimal | None:
    return value if isinstance(value, Decimal) else None


def _time(value: object) -> dt.datetime | None:
    if value is None or value is pd.NaT or not isinstance(value, dt.datetime):  # NaT is a datetime, too
        return None
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass
class ApplyOutcome:
    plan_id: int
    dry_run: bool
    lines: list[str] = field(default_factory=list)
    released: int = 0
    skipped: int = 0
    failed: int = 0
    left: int = 0            # not reached: the cap

    def line(self) -> str:
        verb = "would release" if self.dry_run else "released"
        left = f", {self.left} left for the next run (the cap)" if self.left else ""
        return (f"release plan {self.plan_id}: {verb} {self.released}, skipped {self.skipped}, "
                f"failed {self.failed}{left}")


def apply_release(settings: Settings, engine: Engine, clock: Clock, plan_id: int, *, dry_run: bool = False,
                  yes: bool = False, max_numbers: int | None = None, client: TruedyClient | None = None) -> ApplyOutcome:
    """Apply a due plan (see the module's docstring). Without `yes` (and not a dry run) nothing is written."""
    now = clock()
    found = plans.plan(engine, plan_id)
    if found is None:
        raise ConfigError(f"no release plan {plan_id}: `reconcile status` lists the pending ones")
    plan, items = found
    if plan.status != "planned":
        raise ConfigError(f"release plan {plan_id} was {plan.status} on {format_timestamp(plan.applied_at)}: "
                          "make a new plan")
    if (now - plan.created_at).days > settings.release.plan_max_age_days:
        raise ConfigError(f"release plan {plan_id} is {(now - plan.created_at).days} days old, over "
                          f"release.plan_max_age_days ({settings.release.plan_max_age_days}): make a new plan")
    if now.date() < plan.release_on:
        raise ConfigError(f"release plan {plan_id} is due on {plan.release_on}, not before: its owners were told so")
    cap = min(settings.release.max_per_run, max_numbers) if max_numbers is not None else settings.release.max_per_run
    rehearse = dry_run or not yes
    outcome = ApplyOutcome(plan_id, rehearse)
    todo = [item for item in items if item.state not in plans.FINAL]
    kept = {k.number_id: k for k in keep_store.listing(engine, now=now)}
    with engine.connect() as connection:
        newest = readers.latest_complete_run(connection)
        agents = readers.agents_as_of(connection, newest.id) if newest else pd.DataFrame(columns=["agent_id"])
    status = by_agent(agents, "status") if len(agents) else {}
    own_client = client is None
    live_client = client or make_client(settings)
    try:
        called = _called_since(live_client, plan.created_at, now, {i.number_id for i in todo if i.flag == "idle"})
        for item in todo:
            if outcome.released >= cap:
                outcome.left += 1
                continue
            keep = kept.get(item.number_id)
            kept_by = f"by {keep.kept_by} on {keep.kept_at:%Y-%m-%d}: {keep.reason}" if keep else None
            _one(settings, engine, live_client, clock, item, kept_by, status, called, rehearse, outcome)
    finally:
        if own_client:
            live_client.close()
    if not rehearse and not outcome.failed and not outcome.left:  # every number released or skipped: done
        plans.finish(engine, plan_id, clock())
    if not rehearse and (outcome.released or outcome.skipped or outcome.failed):
        _tell(settings, engine, clock, plan, items, agents, outcome)
    if not dry_run and not yes:
        outcome.lines.append("nothing was released: run again with --yes to release the numbers above")
    return outcome


@dataclass
class DueOutcome:
    """The release job: every due plan applied, under one cap."""

    applied: list[ApplyOutcome] = field(default_factory=list)

    def line(self) -> str:
        return "; ".join(a.line() for a in self.applied) or "no release plan is due"

    def counts(self) -> dict[str, int]:
        return {"released": sum(a.released for a in self.applied), "skipped": sum(a.skipped for a in self.applied),
                "failed": sum(a.failed for a in self.applied)}

    def raise_for_failures(self) -> None:
        failed = sum(a.failed for a in self.applied)
        if failed:
            raise UpstreamError(f"{failed} number(s) were not released (journalled as failed); the next run retries")


def run_due_plans(settings: Settings, engine: Engine, clock: Clock) -> DueOutcome:
    """The scheduled release job (schedule.release): apply every due plan, release.max_per_run in all."""
    outcome = DueOutcome()
    budget = settings.release.max_per_run
    for plan in plans.pending(engine):
        if plan.release_on > clock().date() or budget <= 0:
            continue
        applied = apply_release(settings, engine, clock, plan.id, yes=True, max_numbers=budget)
        budget -= applied.released
        outcome.applied.append(applied)
    return outcome


def _tell(settings: Settings, engine: Engine, clock: Clock, plan: plans.Plan, items: list[plans.Item],
          agents: pd.DataFrame, outcome: ApplyOutcome) -> None:
    """The outcome to finance, ops and the owners of the plan's numbers: one mail per apply run, logged once."""
    numbers = pd.DataFrame([{"number_id": i.number_id, "inbound_agent_id": i.inbound_agent_id,
                             "outbound_agent_id": i.outbound_agent_id} for i in items],
                           columns=["number_id", "inbound_agent_id", "outbound_agent_id"])
    routing = route(numbers, agents, settings.notify.owner_metadata_key, (), settings.notify.finance_recipients)
    recipients = sorted(set(routing.numbers) | set(settings.notify.ops_recipients))  # owners, finance, ops
    if not recipients:
        log.warning("release plan %d: nobody to tell (no finance, ops or owner address)", plan.id)
        return
    now = clock()
    with engine.connect() as connection:
        run = readers.latest_complete_run(connection)
    if run is None:
        return
    subject = f"Release plan {plan.id}: {outcome.line().split(': ', 1)[1]}"
    text = "\n".join([f"Release plan {plan.id} (made {format_timestamp(plan.created_at)} by {plan.created_by}, "
                      f"due {plan.release_on}) was applied on {format_timestamp(now)}:", "", *outcome.lines, "",
                      outcome.line(), "", "A released number stops costing from its next renewal. "
                      "`reconcile status` lists the plans still pending."])
    html = (f"<p>Release plan {plan.id} (made {format_timestamp(plan.created_at)} by {escape(plan.created_by)}, due "
            f"{plan.release_on}) was applied on {format_timestamp(now)}:</p><ul>"
            + "".join(f"<li>{escape(line)}</li>" for line in outcome.lines)
            + f"</ul><p><strong>{escape(outcome.line())}</strong></p><p>A released number stops costing from its "
            "next renewal. <code>reconcile status</code> lists the plans still pending.</p>")

    def build() -> EmailMessage:
        return build_message(sender=settings.mail.from_address, to=recipients, subject=subject, text=text,
                             html=f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
                                  f"content=\"width=device-width, initial-scale=1\"><title>"
                                  f"{escape(subject)}</title></head><body>{html}</body></html>", date=now,
                             message_id=message_id_for("release", str(plan.id), format_timestamp(now)),
                             reply_to=settings.notify.contact)

    delivery = deliver_once(engine, transport_for(settings.mail), build, run_id=run.id,
                            kind=f"release:{plan.id}:{now:%Y%m%d%H%M%S}", envelopes={r: [r] for r in recipients},
                            number_ids=[i.number_id for i in items], clock=clock, once_per_run=False)
    for recipient, why in delivery.failed.items():
        log.error("release plan %d: the outcome was not mailed to %s: %s", plan.id, recipient, why)


def _called_since(client: TruedyClient, since: dt.datetime, now: dt.datetime, numbers: set[str]) -> set[str]:
    """Which of `numbers` had a call since the plan (read live)."""
    if not numbers:
        return set()
    called: set[str] = set()
    for page in client.iter_calls(since, now, slices=1):
        called.update(c.number_id for c in page.calls if c.number_id in numbers)
    return called


def _one(settings: Settings, engine: Engine, client: TruedyClient, clock: Clock, item: plans.Item,
         kept_by: str | None, status: dict[str, str], called: set[str], rehearse: bool, outcome: ApplyOutcome) -> None:
    """One number: read it live, decide, and (for real) journal, unassign, release, read back on doubt."""
    live = client.get_number(item.number_id)
    decision = decide(Planned(item.number_id, item.flag, item.monthly_cost), live, kept_by, status, called)
    label = f"{item.phone_number} ({item.number_id})"
    if decision.action == "skip":
        outcome.skipped += 1
        outcome.lines.append(f"{label}: {'would skip' if rehearse else 'skipped'}: {decision.why}")
        if not rehearse:
            plans.journal(engine, item.id, "skipped", decision.why, clock())
        return
    if decision.action == "already":
        outcome.released += 1
        outcome.lines.append(f"{label}: {decision.why}")
        if not rehearse:
            plans.journal(engine, item.id, "released", decision.why, clock(), live.released_at if live else None)
        return
    if rehearse:
        outcome.released += 1
        unassign = f" (after unassigning {', '.join(decision.unassign)})" if decision.unassign else ""
        outcome.lines.append(f"{label}: would release{unassign}: {decision.why}")
        return
    _release(engine, client, clock, item, decision, label, outcome)


def _release(engine: Engine, client: TruedyClient, clock: Clock, item: plans.Item, decision: Decision, label: str,
             outcome: ApplyOutcome) -> None:
    plans.journal(engine, item.id, "releasing", "asking the Truedy API", clock())  # before: a kill leaves this
    try:
        for direction in decision.unassign:
            try:
                client.unassign_number(item.number_id, direction, once=True)
            except AuthError:
                raise
            except ReconcileError as exc:  # did it act? read back rather than send it again
                back = client.get_number(item.number_id)
                if back is None or back.assignment(direction) is not None:
                    raise
                log.info("%s: the %s unassign answered %s, but it took effect (read back)", label, direction, exc)
        answer = client.release_number(item.number_id, once=True)  # never blindly again: read back instead
    except AuthError:
        plans.journal(engine, item.id, "planned", "not released: the API key was refused", clock())
        raise
    except ReconcileError as exc:
        back = client.get_number(item.number_id)
        if back is not None and back.status == "released":
            outcome.released += 1
            plans.journal(engine, item.id, "released", f"released (the answer was lost: {exc}; read back)",
                          clock(), back.released_at)
            outcome.lines.append(f"{label}: released (read back after: {exc})")
            return
        outcome.failed += 1
        plans.journal(engine, item.id, "failed", f"not released: {exc}; read back: still "
                      f"{back.status if back else 'unknown'}; apply again to retry", clock())
        outcome.lines.append(f"{label}: FAILED: {exc}; it is still {back.status if back else 'unknown'}")
        return
    outcome.released += 1
    plans.journal(engine, item.id, "released", "released", clock(), answer.released_at)
    saving = format_money(item.monthly_cost, item.currency) if item.monthly_cost is not None and item.currency \
        else "an unknown amount"
    outcome.lines.append(f"{label}: released, saving {saving} a month")

