"""The commands that act on numbers: `keep`, `unkeep`, `release plan`, `release apply`."""

from __future__ import annotations

import click

from reconcile.jobs.context import Context, fail_cleanly


@click.group()
def release() -> None:
    """Release flagged numbers through the Truedy API: a plan first, applied on its date unless kept."""


@release.command("plan")
@click.option("--rules", default="unassigned,orphaned_agent,idle", show_default=True,
              help="Which flags the plan takes (comma-separated).")
@click.option("--min-flagged-days", type=click.IntRange(0), default=None,
              help="Flagged for at least this many days (default release.min_flagged_days).")
@click.option("--max", "max_numbers", type=click.IntRange(1), default=None, help="At most this many numbers.")
@click.option("--label-pattern", default="", help="Only numbers whose label matches this regular expression.")
@click.option("--release-on", default=None, help="The release date, YYYY-MM-DD (default: release.notice_days ahead).")
@click.pass_obj
@fail_cleanly
def release_plan(ctx: Context, rules: str, min_flagged_days: int | None, max_numbers: int | None,
                 label_pattern: str, release_on: str | None) -> None:
    """Plan the release of flagged numbers from the newest complete run (no API call)."""
    import re

    from reconcile.clock import system_clock
    from reconcile.errors import ConfigError
    from reconcile.jobs.keep import parse_day
    from reconcile.jobs.release import plan_release
    from reconcile.jobs.runtime import exclusive_run, open_store
    from reconcile.releases import Criteria

    try:
        re.compile(label_pattern)
    except re.error as exc:
        raise ConfigError(f"--label-pattern: not a regular expression ({exc})") from None
    settings = ctx.settings
    criteria = Criteria(tuple(r.strip() for r in rules.split(",") if r.strip()),
                        settings.release.min_flagged_days if min_flagged_days is None else min_flagged_days,
                        max_numbers, label_pattern)
    engine = open_store(settings)
    with exclusive_run(engine):
        outcome = plan_release(settings, engine, system_clock, criteria, _login(), parse_day(release_on, "--release-on"))
    ctx.say(outcome.line())


@release.command("apply")
@click.argument("plan_id", type=int)
@click.option("--dry-run", is_flag=True, help="Check every number live and say what would happen; change nothing.")
@click.option("--yes", is_flag=True, help="Release for real (without it, apply only shows what it would do).")
@click.option("--max", "max_numbers", type=click.IntRange(1), default=None,
              help="Release at most this many (release.max_per_run caps it too).")
@click.pass_obj
@fail_cleanly
def release_apply(ctx: Context, plan_id: int, dry_run: bool, yes: bool, max_numbers: int | None) -> None:
    """Apply a due release plan: each number re-checked live, journalled, released at most once."""
    from reconcile.clock import system_clock
    from reconcile.errors import ConfigError, UpstreamError
    from reconcile.jobs.release import apply_release
    from reconcile.jobs.runtime import exclusive_run, open_store

    engine = open_store(ctx.settings)
    with exclusive_run(engine):
        outcome = apply_release(ctx.settings, engine, system_clock, plan_id, dry_run=dry_run, yes=yes,
                                max_numbers=max_numbers)
    for line in outcome.lines:
        ctx.say(line)
    ctx.say(outcome.line())
    if not dry_run and not yes:
        raise ConfigError(f"release plan {plan_id}: refused without --yes (above: what it would do)")
    if outcome.failed:
        raise UpstreamError(f"{outcome.failed} number(s) were not released (journalled as failed): "
                            f"`reconcile release apply {plan_id} --yes` again retries only those")


@click.command()
@click.argument("number", required=False)
@click.option("--reason", default="", help="Why it is kept (required to keep).")
@click.option("--until", "until", default=None, help="Keep until this day, inclusive (YYYY-MM-DD); default: for good.")
@click.option("--by", "by", default=None, help="Who keeps it (default: the login name).")
@click.option("--list", "as_list", is_flag=True, help="List the numbers kept, and what the config protects.")
@click.option("--history", is_flag=True, help="With --list: every keep ever, ended ones too.")
@click.pass_obj
@fail_cleanly
def keep(ctx: Context, number: str | None, reason: str, until: str | None, by: str | None, as_list: bool,
         history: bool) -> None:
    """Keep a number on purpose (NUMBER: E.164 or number id): it is never flagged while kept."""
    from reconcile.clock import system_clock
    from reconcile.errors import ConfigError
    from reconcile.jobs.keep import keep_lines, keep_number, parse_day
    from reconcile.jobs.runtime import open_store

    engine = open_store(ctx.settings)
    if as_list or number is None:
        if number is not None:
            raise ConfigError("--list takes no number")
        for line in keep_lines(ctx.settings, engine, system_clock(), history):
            ctx.say(line)
        return
    ctx.say(keep_number(engine, number, reason, by or _login(), system_clock(), parse_day(until, "--until")))


@click.command()
@click.argument("number")
@click.option("--reason", default="no longer kept", show_default=True, help="Why the keep ends.")
@click.option("--by", "by", default=None, help="Who ends it (default: the login name).")
@click.pass_obj
@fail_cleanly
def unkeep(ctx: Context, number: str, reason: str, by: str | None) -> None:
    """End the keep of a number: the next nightly evaluates it again."""
    from reconcile.clock import system_clock
    from reconcile.jobs.keep import unkeep_number
    from reconcile.jobs.runtime import open_store

    ctx.say(unkeep_number(open_store(ctx.settings), number, reason, by or _login(), system_clock()))


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
