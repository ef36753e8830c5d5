"""Release plans against the sandbox over HTTP: planned from the store, applied live, journalled, at most once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconcile.config import SANDBOX_API_KEY, Secret, load_settings
from reconcile.errors import AuthError, ConfigError
from reconcile.jobs.keep import keep_number
from reconcile.jobs.release import apply_release, plan_release
from reconcile.releases import Criteria
from reconcile.review.nightly import evaluate_run
from reconcile.store import releases as plans
from reconcile.sync import SyncOptions, run_sync

ROOT = Path(__file__).resolve().parent.parent
WRITES = ("POST", "DELETE")


@pytest.fixture
def world(make_sandbox, make_client, store, tmp_path):
    server = make_sandbox(numbers=150)
    server.account.faults.rate_limit = 0
    run_sync(make_client(server), store, clock=lambda: server.account.now, options=SyncOptions(call_slices=1))
    base = load_settings(environ={})
    settings = dataclasses.replace(
        base, reports_dir=tmp_path / "reports",
        truedy=dataclasses.replace(base.truedy, base_url=server.url, api_key=Secret(SANDBOX_API_KEY), max_attempts=3,
                                   backoff_base_s=0.01))
    evaluate_run(settings, store)  # records the flag streaks, as the nightly does
    return server, store, settings


def make_plan(world, **criteria) -> int:
    server, store, settings = world
    now = server.account.now
    outcome = plan_release(settings, store, lambda: now, Criteria(min_flagged_days=0, **criteria), "ops-lead",
                           release_on=now.date())
    return outcome.plan_id


def writes(server) -> list[tuple[str, str]]:
    return [r for r in server.requests if r[0] in WRITES]


def test_a_plan_is_stored_and_written_with_its_evidence(world):
    server, store, settings = world
    now = server.account.now
    outcome = plan_release(settings, store, lambda: now, Criteria(min_flagged_days=0, max_numbers=8), "ops-lead")
    plan, items = plans.plan(store, outcome.plan_id)
    assert len(items) == outcome.count == 8 and plan.release_on == now.date() + dt.timedelta(days=7)
    assert all(i.state == "planned" and i.monthly_cost is not None for i in items), "Truedy-managed only"
    csv_file, html_file = outcome.files
    assert csv_file.read_text().count("\n") == 9 and "will be released on" in html_file.read_text()
    assert "unless kept" in outcome.line()
    with pytest.raises(ConfigError, match="is due on"):
        apply_release(settings, store, lambda: now, outcome.plan_id, yes=True)
    with pytest.raises(ConfigError, match="no release plan 999"):
        apply_release(settings, store, lambda: now, 999, yes=True)


def test_dry_run_and_refusal_make_no_write(world):
    server, store, settings = world
    plan_id = make_plan(world, max_numbers=5)
    before = len(server.requests)
    dry = apply_release(settings, store, lambda: server.account.now, plan_id, dry_run=True)
    assert dry.released == 5 and all("would release" in line for line in dry.lines)
    refused = apply_release(settings, store, lambda: server.account.now, plan_id)
    assert refused.lines[-1].startswith("nothing was released")
    assert writes(server) == [] and len(server.requests) > before, "read, never written"
    assert {i.state for i in plans.plan(store, plan_id)[1]} == {"planned"}


def test_apply_rechecks_each_number_live_and_journals_it(world):
    server, store, settings = world
    plan_id = make_plan(world, rules=("unassigned",), max_numbers=6)
    _, items = plans.plan(store, plan_id)
    kept, taken, gone = items[0], items[1], items[2]
    keep_number(store, kept.number_id, "the Lyon office still needs it", "dana", server.account.now, None)
    active = next(a.id for a in server.account.agents if a.status == "active")
    server.account.assign(taken.number_id, active, "inbound")
    server.account.release(gone.number_id)
    outcome = apply_release(settings, store, lambda: server.account.now, plan_id, yes=True)
    by_number = {i.number_id: i for i in plans.plan(store, plan_id)[1]}
    assert by_number[kept.number_id].state == "skipped" and "kept since the plan" in by_number[kept.number_id].detail
    assert by_number[taken.number_id].state == "skipped" and "an active agent took it" in by_number[taken.number_id].detail
    assert by_number[gone.number_id].state == "released" and "already released" in by_number[gone.number_id].detail
    released = [i for i in items[3:]]
    assert all(by_number[i.number_id].state == "released" for i in released)
    assert all(n.status == "released" for n in server.account.numbers if n.id in {i.number_id for i in released})
    assert sorted(writes(server)) == sorted(("DELETE", f"/telephony/numbers/{i.number_id}") for i in released)
    assert len(items) >= 4 and (outcome.released, outcome.skipped, outcome.failed) == (len(items) - 2, 2, 0)
    assert plans.plan(store, plan_id)[0].status == "applied"
    with pytest.raises(ConfigError, match="was applied"):
        apply_release(settings, store, lambda: server.account.now, plan_id, yes=True)


def test_the_cap_bounds_a_run_and_the_rest_waits(world):
    server, store, settings = world
    plan_id = make_plan(world, max_numbers=5)
    first = apply_release(settings, store, lambda: server.account.now, plan_id, yes=True, max_numbers=2)
    assert (first.released, first.left) == (2, 3) and plans.plan(store, plan_id)[0].status == "planned"
    capped = dataclasses.replace(settings, release=dataclasses.replace(settings.release, max_per_run=2))
    second = apply_release(capped, store, lambda: server.account.now, plan_id, yes=True, max_numbers=10)
    assert (second.released, second.left) == (2, 1), "--max never raises the configured cap"
    apply_release(settings, store, lambda: server.account.now, plan_id, yes=True)
    assert len([w for w in writes(server) if w[0] == "DELETE"]) == 5, "each number released once"


def test_a_lost_delete_answer_is_read_back_not_retried(world):
    server, store, settings = world
    plan_id = make_plan(world, rules=("unassigned",), max_numbers=2)  # nothing to unassign: the DELETE is first
    server.account.faults.lose_write_answers = 1  # the first DELETE acts, then answers 503
    outcome = apply_release(settings, store, lambda: server.account.now, plan_id, yes=True)
    assert outcome.released == 2 and outcome.failed == 0
    assert any("read back" in line for line in outcome.lines)
    deletes = [w for w in writes(server) if w[0] == "DELETE"]
    assert len(deletes) == 2, "the 503'd DELETE was not sent again"
    assert all(i.state == "released" for i in plans.plan(store, plan_id)[1])


def test_a_refused_key_exits_upstream_with_the_journal_intact(world):
    server, store, settings = world
    plan_id = make_plan(world, max_numbers=2)
    wrong = dataclasses.replace(settings, truedy=dataclasses.replace(settings.truedy, api_key=Secret("wrong")))
    with pytest.raises(AuthError):
        apply_release(wrong, store, lambda: server.account.now, plan_id, yes=True)
    assert {i.state for i in plans.plan(store, plan_id)[1]} == {"planned"}
    assert writes(server) == []


def test_a_kill_mid_apply_then_a_rerun_releases_each_number_once(world, database_url, tmp_path):
    server, store, settings = world
    plan_id = make_plan(world, max_numbers=12)
    server.account.faults.latency_s = 0.15  # slow enough to kill in the middle
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "TRUEDY_"))}
    env.update(RECONCILE_DATABASE_URL=database_url, TRUEDY_BASE_URL=server.url, TRUEDY_API_KEY=SANDBOX_API_KEY,
               RECONCILE_REPORTS_DIR=str(tmp_path / "reports"))
    command = [sys.executable, "-m", "reconcile.jobs.cli", "release", "apply", str(plan_id), "--yes"]
    job = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len([w for w in writes(server) if w[0] == "DELETE"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=30)
    states = [i.state for i in plans.plan(store, plan_id)[1]]
    assert "released" in states and "planned" in states, states
    server.account.faults.latency_s = 0
    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    _, items = plans.plan(store, plan_id)
    assert {i.state for i in items} == {"released"}
    deletes = [w for w in writes(server) if w[0] == "DELETE"]
    assert len(deletes) == len(set(deletes)) == 12, "never released twice"


def test_a_plan_is_announced_in_the_digests_and_listed_by_status(world, tmp_path):
    import email
    import email.policy

    from reconcile.jobs.cleanup import run_cleanup
    from reconcile.jobs.status import collect_status, format_status

    server, store, settings = world
    now = server.account.now
    outcome = plan_release(settings, store, lambda: now, Criteria(min_flagged_days=0, max_numbers=4), "ops-lead")
    _, items = plans.plan(store, outcome.plan_id)
    mailing = dataclasses.replace(
        settings, mail=dataclasses.replace(settings.mail, outbox_dir=tmp_path / "outbox"),
        notify=dataclasses.replace(settings.notify, default_recipients=("ops@example.com",),
                                   finance_recipients=("finance@example.com",)))
    run_cleanup(mailing, store)
    finance = next(p for p in (tmp_path / "outbox").glob("*.eml") if "finance@example.com" in p.name)
    text = email.message_from_bytes(finance.read_bytes(), policy=email.policy.default).get_body(("plain",)).get_content()
    day = f"{outcome.release_on:%-d %b %Y}"
    assert f"{len(items)} of them will be released on the date shown, unless kept" in text
    assert text.count(f"WILL BE RELEASED ON {day} unless kept") == len(items)
    assert "reconcile keep +NUMBER" in text
    report = collect_status(settings, store, now=now)
    assert report["pending_release_plans"] == [{"plan_id": outcome.plan_id, "release_on": outcome.release_on.isoformat(),
                                                "created_by": "ops-lead", "numbers": len(items), "due": False}]
    assert f"release plan {outcome.plan_id}: {len(items)} number(s), due {outcome.release_on}" in format_status(report)


def test_an_old_plan_is_refused(world):
    server, store, settings = world
    plan_id = make_plan(world, max_numbers=1)
    later = server.account.now + dt.timedelta(days=settings.release.plan_max_age_days + 1)
    with pytest.raises(ConfigError, match="over release.plan_max_age_days"):
        apply_release(settings, store, lambda: later, plan_id, yes=True)
    assert writes(server) == []


def test_the_optional_release_job_applies_due_plans_under_the_cap(world):
    from reconcile.jobs.runner import execute_job, scheduled

    server, store, settings = world
    assert "release" not in scheduled(settings), "off by default"
    plan_id = make_plan(world, max_numbers=4)
    on = dataclasses.replace(settings, schedule=dataclasses.replace(settings.schedule, release="0 9 * * *"),
                             release=dataclasses.replace(settings.release, max_per_run=3))
    assert "release" in scheduled(on)
    result = execute_job(on, "release", "scheduler", clock=lambda: server.account.now, engine=store)
    assert result.status == "succeeded" and f"release plan {plan_id}: released 3" in result.summary
    states = [i.state for i in plans.plan(store, plan_id)[1]]
    assert states.count("released") == 3 and states.count("planned") == 1, "the cap holds"


def test_the_outcome_is_mailed_to_finance_ops_and_the_owners(world, tmp_path):
    import email
    import email.policy

    server, store, settings = world
    plan_id = make_plan(world, max_numbers=3)
    mailing = dataclasses.replace(
        settings, mail=dataclasses.replace(settings.mail, outbox_dir=tmp_path / "outbox"),
        notify=dataclasses.replace(settings.notify, finance_recipients=("finance@example.com",),
                                   ops_recipients=("oncall@example.com",)))
    apply_release(mailing, store, lambda: server.account.now, plan_id, yes=True)
    (sent,) = (tmp_path / "outbox").glob("*.eml")
    message = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)
    assert message["Subject"].startswith(f"Release plan {plan_id}: released 3")
    assert {"finance@example.com", "oncall@example.com"} <= {a.strip() for a in message["To"].split(",")}
    body = message.get_body(("plain",)).get_content()
    assert body.count(": released, saving ") == 3
