"""`reconcile demo`: the whole job against a local sandbox, through a simulated week.

Everything goes under var/demo/ (a fresh SQLite store, the reports), so a demo never
touches a real store. The sandbox's clock advances one day per night; the job's clock
follows it, so the history, the changes and the trend are real.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from reconcile.config import (
    DEFAULT_CONFIG,
    SANDBOX_API_KEY,
    STATE_DIR,
    Settings,
    TruedySettings,
    load_settings,
)
from reconcile.jobs.cleanup import CleanupOutcome, run_cleanup
from reconcile.jobs.keep import keep_number
from reconcile.jobs.monthly import MonthlyOutcome, report_monthly, send_review
from reconcile.jobs.nightly import NightlyOutcome, run_nightly
from reconcile.jobs.release import ApplyOutcome, PlanOutcome, apply_release, plan_release
from reconcile.money import format_money
from reconcile.progress import NullProgress
from reconcile.releases import Criteria
from reconcile.review.monthly import previous_period
from reconcile.sandbox import SandboxServer, generate_account
from reconcile.sandbox.account import Account
from reconcile.sandbox.truth import expected_flags, invoice_errors
from reconcile.store import keeps as keep_store
from reconcile.store import releases as plans
from reconcile.store.database import open_engine, upgrade

log = logging.getLogger("reconcile.demo")
DEMO_CONFIG = DEFAULT_CONFIG.with_name("demo.toml")  # package data, beside the defaults


@dataclasses.dataclass
class DemoResult:
    directory: Path
    nights: list[NightlyOutcome]
    truth_agrees: bool
    truth_detail: str
    cleanup: CleanupOutcome
    monthly: MonthlyOutcome
    billing_agrees: bool
    billing_detail: str
    plan: PlanOutcome | None = None
    applied: ApplyOutcome | None = None
    announced: int = 0          # the digests that announced the plan


def demo_settings(root: Path, base_url: str) -> Settings:
    settings = load_settings(environ={}, config_path=DEMO_CONFIG)
    truedy: TruedySettings = dataclasses.replace(settings.truedy, base_url=base_url,
                                                 api_key=type(settings.truedy.api_key)(SANDBOX_API_KEY),
                                                 max_attempts=4, run_deadline_s=600.0)
    mail = dataclasses.replace(settings.mail, outbox_dir=root / "outbox")
    return dataclasses.replace(settings, truedy=truedy, database_url=f"sqlite:///{root / 'reconcile.db'}",
                               reports_dir=root / "reports", mail=mail)


def run_demo(root: Path | None = None, nights: int = 7, numbers: int = 500, seed: int = 7,
             today: dt.date | None = None, say: Callable[[str], None] = print) -> DemoResult:
    root = (root or STATE_DIR / "demo").absolute()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    today = today or dt.datetime.now(dt.UTC).date()
    first_night = dt.datetime.combine(today - dt.timedelta(days=nights - 1), dt.time(2, 30), dt.UTC)
    account = generate_account(seed=seed, numbers=numbers, start=first_night)
    _protect_a_few(account)
    account.faults.rate_limit = 0
    outcomes = []
    with SandboxServer(account) as server:
        settings = demo_settings(root, server.url)
        engine = open_engine(settings.database_url)
        upgrade(engine)
        say(f"demo: sandbox with {len(account.numbers)} numbers at {server.url}; store {root / 'reconcile.db'}")
        plan: PlanOutcome | None = None
        applied: ApplyOutcome | None = None
        announced = 0
        for night in range(nights):
            if night:
                account.advance(days=1)
            if plan is not None and night == nights - 1:  # the plan's day: released unless kept, then the sync
                applied = apply_release(settings, engine, lambda: account.now, plan.plan_id, yes=True)
                say(f"night {night + 1}/{nights}: {applied.line()}")
                for line in applied.lines:
                    say(f"  {line}")
            outcome = run_nightly(settings, engine, lambda: account.now, progress=NullProgress())
            outcomes.append(outcome)
            say(f"night {night + 1}/{nights}: {outcome.sync.line() if outcome.sync else ''}")
            if night == 0 and nights > 1:  # a plan on the first night, announced in that night's digests
                plan, announced = _plan_and_announce(settings, engine, account, nights, say)
        with engine.connect() as connection:
            kept = keep_store.kept_ids(connection, account.now)
        agrees, detail = _check_truth(account, settings, outcomes[-1], kept)
        cleanup = run_cleanup(settings, engine=engine, clock=lambda: account.now)
        monthly = report_monthly(settings, engine, previous_period(account.now), lambda: account.now,
                                 progress=NullProgress())
        send_review(settings, engine, monthly, None, lambda: account.now)
        billing_agrees, billing_detail = _check_billing(account, monthly)
        engine.dispose()
    last = outcomes[-1]
    say(last.report_line())
    realised = ", ".join(format_money(t.amount, t.currency) for t in last.summary.realised) or "none yet"
    say(f"savings realised (released flagged numbers, a month): {realised}")
    for path in (last.files.html, last.files.flagged_csv, last.files.inventory_csv):
        say(f"  {path}")
    say(f"ground truth: {detail}")
    say(f"cleanup digests: {len(cleanup.sent)} written to {settings.mail.outbox_dir}")
    for line in cleanup.lines()[:-1]:
        say(f"  {line}")
    say(monthly.line())
    for path in (monthly.files.html, monthly.files.reconciliation_csv, monthly.files.focus_csv):
        say(f"  {path}")
    say(f"invoice ground truth: {billing_detail}")
    return DemoResult(root, outcomes, agrees, detail, cleanup, monthly, billing_agrees, billing_detail, plan, applied,
                      announced)


def _plan_and_announce(settings: Settings, engine: Engine, account: Account, nights: int,
                       say: Callable[[str], None]) -> tuple[PlanOutcome, int]:
    """Plan the release of ten flagged numbers on the last night, and send that night's digests."""
    release_on = (account.now + dt.timedelta(days=nights - 1)).date()
    plan = plan_release(settings, engine, lambda: account.now, Criteria(min_flagged_days=0, max_numbers=10), "demo",
                        release_on)
    say(f"  {plan.line()}")
    announced = run_cleanup(settings, engine, clock=lambda: account.now)
    say(f"  announced in {len(announced.sent)} digest(s) to the numbers' owners and finance")
    found = plans.plan(engine, plan.plan_id)
    if found and found[1]:  # an owner reads the digest and keeps one of them
        first = found[1][0]
        say(f"  {keep_number(engine, first.number_id, 'still needed for the spring campaign', 'ana', account.now, None)}")
    return plan, len(announced.sent)


def _protect_a_few(account: Account) -> None:
    """Label two forgotten numbers "KEEP" so the demo shows protection at work."""
    kept = [n for n in account.numbers if n.intent == "unassigned" and n.status == "active"][:2]
    for number in kept:
        number.label = "KEEP emergency line"
        number.touch()


def _check_truth(account: Account, settings: Settings, outcome: NightlyOutcome,
                 kept: frozenset[str]) -> tuple[bool, str]:
    """flagged.csv against the sandbox's own reading of the rules (the store's keep list counts as protection)."""
    truth = expected_flags(account, settings.flags.grace_days, settings.flags.idle_days_threshold,
                           settings.flags.protect_number_ids | kept, settings.flags.protect_label_pattern)
    flagged = pd.read_csv(outcome.files.flagged_csv, dtype=str, keep_default_na=False)
    found = dict(zip(flagged["number_id"], flagged["flag"], strict=True))
    if found == truth:
        return True, f"flagged.csv agrees with the sandbox exactly ({len(truth)} numbers)"
    missing = sorted(set(truth) - set(found))[:5]
    extra = sorted(set(found) - set(truth))[:5]
    differ = sorted(k for k in set(truth) & set(found) if truth[k] != found[k])[:5]
    return False, f"DISAGREES with the sandbox: missing {missing}, extra {extra}, different {differ}"


def _check_billing(account: Account, outcome: MonthlyOutcome) -> tuple[bool, str]:
    """The review's findings against the errors the sandbox put in that month's invoices."""
    month = f"{outcome.review.period.year}{outcome.review.period.month:02d}"
    truth = {(e.invoice_id, e.line_item_id or "", e.number_id, e.kind)
             for e in invoice_errors(account) if e.invoice_id.startswith(f"inv_{month}_")}
    findings = pd.read_csv(outcome.files.reconciliation_csv, dtype=str, keep_default_na=False)
    found = set(zip(findings["invoice_id"], findings["line_item_id"], findings["number_id"], findings["issue"],
                    strict=True))
    if found == truth:
        return True, f"reconciliation.csv agrees with the sandbox exactly ({len(truth)} deliberate billing errors)"
    return False, f"DISAGREES with the sandbox: missed {sorted(truth - found)[:5]}, extra {sorted(found - truth)[:5]}"
