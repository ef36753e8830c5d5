"""`reconcile`: the command line. Parses, calls the core, maps errors to exit codes.

Exit codes: 0 done (findings are not failures), 2 bad usage or configuration,
3 upstream API unusable, 4 database problem, 5 another run holds the lock,
1 anything unexpected. Every failure prints one plain line on stderr.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import click

from reconcile import __version__
from reconcile.config import SANDBOX_API_KEY
from reconcile.jobs.context import Context, clock_for, fail_cleanly
from reconcile.jobs.number_commands import keep, release, unkeep


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="reconcile", message="%(prog)s %(version)s")
@click.option("--config", "config_path", envvar="RECONCILE_CONFIG", type=click.Path(dir_okay=False),
              help="TOML file layered over the shipped defaults (env RECONCILE_CONFIG).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log lines for people (text) or machines (json); default from config.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_format: str | None) -> None:
    """Find the Truedy phone numbers that cost money and do nothing, and prove it."""
    source = ctx.get_parameter_source("config_path")
    flag = "RECONCILE_CONFIG" if source == click.core.ParameterSource.ENVIRONMENT else "--config"
    ctx.obj = Context(config_path, log_format, flag)


@cli.command()
@click.option("--as-of", "as_of", default=None, help="Pretend the run happens at this RFC 3339 time (tests, replays).")
@click.pass_obj
@fail_cleanly
def sync(ctx: Context, as_of: str | None) -> None:
    """One sync run: the Truedy API into the store, atomically."""
    from reconcile.jobs.runtime import exclusive_run, make_client, open_store, sync_options
    from reconcile.progress import progress_for
    from reconcile.sync import run_sync

    settings = ctx.settings
    clock = clock_for(as_of)
    engine = open_store(settings)
    with exclusive_run(engine), make_client(settings) as client:
        summary = run_sync(client, engine, clock=clock, options=sync_options(settings), progress=progress_for())
    ctx.say(summary.line(), counts={"calls_added": summary.calls_added, "versions_opened": summary.versions_opened,
                                    "data_issues": summary.data_issues})


@cli.group()
def report() -> None:
    """Reports: nightly from the store; monthly after syncing the month's invoices."""


@report.command("nightly")
@click.option("--as-of", "as_of", default=None, help="Report as of this time (default: the newest complete run).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the files (default $RECONCILE_REPORTS_DIR/nightly-YYYY-MM-DD).")
@click.pass_obj
@fail_cleanly
def report_nightly_command(ctx: Context, as_of: str | None, out_dir: str | None) -> None:
    """nightly.html, flagged.csv and inventory.csv as of a run."""
    from pathlib import Path

    from reconcile.jobs.nightly import report_nightly
    from reconcile.jobs.runtime import exclusive_run, open_store

    at = clock_for(as_of)() if as_of else None
    engine = open_store(ctx.settings)
    with exclusive_run(engine):
        outcome = report_nightly(ctx.settings, engine, at, Path(out_dir) if out_dir else None)
    ctx.say(outcome.line(), counts=outcome.counts())


@report.command("monthly")
@click.option("--period", required=True, help="The month to review, YYYY-MM (a complete month).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the files (default $RECONCILE_REPORTS_DIR/monthly-YYYY-MM).")
@click.option("--offline", is_flag=True, help="Use the invoices already in the store; call no API.")
@click.pass_obj
@fail_cleanly
def report_monthly_command(ctx: Context, period: str, out_dir: str | None, offline: bool) -> None:
    """monthly.html, reconciliation.csv and focus.csv for a month (syncs that month's invoices first)."""
    from pathlib import Path

    from reconcile.clock import system_clock
    from reconcile.errors import ConfigError
    from reconcile.jobs.monthly import report_monthly
    from reconcile.jobs.runtime import exclusive_run, open_store
    from reconcile.period import Period

    try:
        month = Period.parse(period)
    except ValueError as exc:
        raise ConfigError(f"--period: {exc}") from None
    engine = open_store(ctx.settings)
    with exclusive_run(engine):
        outcome = report_monthly(ctx.settings, engine, month, system_clock, Path(out_dir) if out_dir else None,
                                 fetch=not offline)
    ctx.say(outcome.line(), counts=outcome.counts())


@cli.group()
def run() -> None:
    """A whole job, as the scheduler runs it."""


TRIGGER = click.option("--trigger", type=click.Choice(["cron", "manual"]), default=None,
                       help="Recorded in the job history (default: manual on a terminal, cron otherwise).")


RESEND_UNKNOWN = click.option("--resend-unknown", is_flag=True,
                              help="Send again the messages whose fate is unknown (the process died while the "
                                   "mail server had them); check the server's log first.")


def _run_job(ctx: Context, job: str, trigger: str | None, as_of: str | None = None,
             resend_unknown: bool = False) -> None:
    from reconcile.jobs.cleanup import run_cleanup
    from reconcile.jobs.monthly import run_monthly
    from reconcile.jobs.runner import JOBS, JobFunction, execute_job

    trigger = trigger or ("manual" if sys.stdin.isatty() else "cron")
    resending: dict[str, JobFunction] = {"cleanup": functools.partial(run_cleanup, resend_unknown=True),
                                         "monthly": functools.partial(run_monthly, resend_unknown=True)}
    jobs = {**JOBS, job: resending[job]} if resend_unknown else None
    result = execute_job(ctx.settings, job, trigger, clock=clock_for(as_of), jobs=jobs)
    if not ctx.json:  # in JSON the runner's own line (with the run's fields) is the summary
        click.echo(result.summary)


@run.command("nightly")
@click.option("--as-of", "as_of", default=None, help="Pretend the run happens at this RFC 3339 time.")
@TRIGGER
@click.pass_obj
@fail_cleanly
def run_nightly_command(ctx: Context, as_of: str | None, trigger: str | None) -> None:
    """Sync, then the nightly report (recorded in the job history; alerts ops on failure)."""
    _run_job(ctx, "nightly", trigger, as_of)


@run.command("monthly")
@click.option("--as-of", "as_of", default=None, help="Pretend the run happens at this RFC 3339 time.")
@TRIGGER
@RESEND_UNKNOWN
@click.pass_obj
@fail_cleanly
def run_monthly_command(ctx: Context, as_of: str | None, trigger: str | None, resend_unknown: bool) -> None:
    """The finance review of the previous calendar month (recorded in the job history)."""
    _run_job(ctx, "monthly", trigger, as_of, resend_unknown)


@run.command("release")
@TRIGGER
@click.pass_obj
@fail_cleanly
def run_release_command(ctx: Context, trigger: str | None) -> None:
    """Apply every due release plan, as the scheduler does when schedule.release is set."""
    _run_job(ctx, "release", trigger)


@cli.group()
def notify() -> None:
    """Messages to people."""


@notify.command("cleanup")
@click.option("--dry-run", is_flag=True, help="Print who would get what; send and record nothing.")
@RESEND_UNKNOWN
@click.pass_obj
@fail_cleanly
def notify_cleanup(ctx: Context, dry_run: bool, resend_unknown: bool) -> None:
    """One cleanup digest per recipient for the newest complete run (never twice)."""
    _cleanup(ctx, dry_run, resend_unknown)


@run.command("cleanup")
@TRIGGER
@RESEND_UNKNOWN
@click.pass_obj
@fail_cleanly
def run_cleanup_command(ctx: Context, trigger: str | None, resend_unknown: bool) -> None:
    """The cleanup job, as the scheduler runs it (recorded in the job history)."""
    _run_job(ctx, "cleanup", trigger, resend_unknown=resend_unknown)


def _cleanup(ctx: Context, dry_run: bool, resend_unknown: bool = False) -> None:
    settings = ctx.settings
    from reconcile.jobs.cleanup import run_cleanup
    from reconcile.jobs.runtime import exclusive_run, open_store

    engine = open_store(settings)
    with exclusive_run(engine):
        outcome = run_cleanup(settings, engine, dry_run=dry_run, resend_unknown=resend_unknown)
    for line in outcome.lines():
        ctx.say(line)
    outcome.raise_for_failures()


@cli.command()
@click.pass_obj
@fail_cleanly
def scheduler(ctx: Context) -> None:
    """The long-running scheduler: runs each job on its cron slot until SIGTERM."""
    from reconcile.jobs.runtime import open_store
    from reconcile.jobs.scheduler import JobScheduler

    JobScheduler(ctx.settings, open_store(ctx.settings)).run()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@fail_cleanly
def status(ctx: Context, as_json: bool) -> None:
    """Health: each job's last runs and verdict, the scheduler's heartbeat, the next slots.

    Exits 0 when healthy, 6 when a job's last run failed, 7 when a job is overdue or the
    scheduler stopped (monitoring reads the code).
    """
    import json

    from reconcile.jobs.runtime import open_store
    from reconcile.jobs.status import collect_status, format_status

    report = collect_status(ctx.settings, open_store(ctx.settings))
    if as_json or ctx.json:
        click.echo(json.dumps(report, indent=None if ctx.json else 2))
    else:
        click.echo(format_status(report))
    sys.exit(report["exit_code"])


@cli.command()
@click.pass_obj
@fail_cleanly
def doctor(ctx: Context) -> None:
    """Check that this install can run its jobs: config, database, API key, mail, folders, scheduler.

    One line per check; exits with the code of the first failure (0 when all pass).
    """
    from reconcile.errors import ConfigError
    from reconcile.jobs.doctor import Check, run_checks

    try:
        settings = ctx.settings
    except ConfigError as exc:
        ctx.say(Check("config", False, str(exc), exc.exit_code).line())
        ctx.say("doctor: the settings do not load; nothing else was checked")
        sys.exit(exc.exit_code)
    checks = run_checks(settings)
    for check in checks:
        ctx.say(check.line(), status="ok" if check.passed else "failed")
    failed = [check for check in checks if not check.passed]
    if not failed:
        ctx.say(f"doctor: all {len(checks)} checks passed")
        return
    ctx.say(f"doctor: {len(failed)} of {len(checks)} checks failed; exit {failed[0].exit_code} "
            f"(the first: {failed[0].name})")
    sys.exit(failed[0].exit_code)


@cli.command()
@click.option("--nights", default=7, show_default=True, type=click.IntRange(1, 60))
@click.option("--numbers", default=500, show_default=True, type=click.IntRange(10, 200_000))
@click.option("--seed", default=7, show_default=True, type=int)
@fail_cleanly
def demo(nights: int, numbers: int, seed: int) -> None:
    """Everything against a local sandbox, through a simulated week, into var/demo/."""
    from reconcile.jobs.demo import run_demo
    from reconcile.jobs.logs import setup_logging

    setup_logging("text", "WARNING")
    result = run_demo(nights=nights, numbers=numbers, seed=seed, say=click.echo)
    if not (result.truth_agrees and result.billing_agrees):
        raise SystemExit(1)


@cli.group()
def db() -> None:
    """The store's schema."""


@db.command("upgrade")
@click.pass_obj
@fail_cleanly
def db_upgrade(ctx: Context) -> None:
    """Apply schema migrations (safe to run again)."""
    from reconcile.jobs.runtime import open_store
    from reconcile.redaction import redact
    from reconcile.store.database import upgrade

    engine = open_store(ctx.settings, check=False)
    before, after = upgrade(engine)
    where = redact(ctx.settings.database_url)
    if before == after:
        ctx.say(f"database {where} is up to date (schema {after})")
    else:
        ctx.say(f"database {where} upgraded from {before or 'empty'} to schema {after}")


@cli.group()
def sandbox() -> None:
    """The local Truedy API, for trying the job without a real account."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--seed", default=7, show_default=True, type=int, help="Same seed, same account.")
@click.option("--numbers", default=500, show_default=True, type=click.IntRange(1, 500_000))
@click.option("--calls", default=None, type=click.IntRange(0), help="Calls over 120 days (default 10 per number).")
@click.option("--agents", default=None, type=click.IntRange(1), help="Agents (default one per 33 numbers).")
@click.option("--api-key", default=SANDBOX_API_KEY, show_default=True, help="The only key the sandbox accepts.")
@click.option("--latency-ms", default=0.0, type=click.FloatRange(0), help="Added to every answer.")
@click.option("--rate-limit", default=20, show_default=True, type=click.IntRange(0), help="Requests per second; 0 = off.")
@click.option("--error-rate", default=0.0, type=click.FloatRange(0, 1), help="Share of answers that are 5xx.")
@click.option("--malformed", default=0, type=click.IntRange(0), help="Numbers and calls served broken.")
@fail_cleanly
def sandbox_serve(host: str, port: int, seed: int, numbers: int, calls: int | None, agents: int | None, api_key: str,
                  latency_ms: float, rate_limit: int, error_rate: float, malformed: int) -> None:
    """Serve a generated account over HTTP (the clock follows real time)."""
    import datetime as dt

    from reconcile.sandbox import generate_account
    from reconcile.sandbox.server import serve_forever

    account = generate_account(seed=seed, numbers=numbers, calls=calls, agents=agents, start=dt.datetime.now(dt.UTC))
    account.follow_real_time()
    account.faults.latency_s = latency_ms / 1000
    account.faults.rate_limit = rate_limit
    account.faults.error_rate = error_rate
    if malformed:
        account.set_malformed(malformed)
    click.echo(f"sandbox: {len(account.numbers)} numbers, {len(account.calls)} calls, seed {seed}", err=True)
    click.echo(f"sandbox: export TRUEDY_BASE_URL=http://{host}:{port} TRUEDY_API_KEY={api_key}", err=True)
    serve_forever(account, host, port, api_key)


cli.add_command(keep)
cli.add_command(unkeep)
cli.add_command(release)


def main() -> None:
    import signal

    def terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # unwinds: the open transaction rolls back

    signal.signal(signal.SIGTERM, terminate)
    cli(prog_name="reconcile")


if __name__ == "__main__":
    main()
