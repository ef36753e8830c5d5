"""`reconcile keep` / `unkeep`: the numbers people keep on purpose, recorded with who, when and why."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import Engine, select

from reconcile.config import Settings
from reconcile.errors import ConfigError
from reconcile.store import keeps as keep_store
from reconcile.store.schema import number_versions


def resolve(engine: Engine, number_or_id: str) -> tuple[str, str]:
    """(number id, phone number) of a stored number, by either; ConfigError (exit 2) when unknown."""
    column = number_versions.c.phone_number if number_or_id.startswith("+") else number_versions.c.number_id
    query = (select(number_versions.c.number_id, number_versions.c.phone_number).where(column == number_or_id)
             .order_by(number_versions.c.valid_to_run.is_(None).desc(), number_versions.c.version_id.desc()).limit(1))
    with engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        raise ConfigError(f"no stored number is {number_or_id!r}: give a number id (num_...) or an E.164 phone "
                          "number that a sync has seen")
    return str(row.number_id), str(row.phone_number)


def keep_number(engine: Engine, number_or_id: str, reason: str, by: str, now: dt.datetime,
                until: dt.date | None) -> str:
    if not reason.strip():
        raise ConfigError("--reason: say why the number is kept (it is shown to everyone who asks)")
    if until is not None and until < now.date():
        raise ConfigError(f"--until {until}: that day has passed")
    number_id, phone = resolve(engine, number_or_id)
    _, replaced = keep_store.keep(engine, number_id, phone, reason.strip(), by, now, until)
    until_text = f" until {until} (inclusive)" if until else ""
    again = " (replacing the keep in force)" if replaced else ""
    return f"kept {phone} ({number_id}){until_text}{again}: {reason.strip()}; it is not flagged while kept"


def unkeep_number(engine: Engine, number_or_id: str, reason: str, by: str, now: dt.datetime) -> str:
    number_id, phone = resolve(engine, number_or_id)
    if not keep_store.unkeep(engine, number_id, by, reason, now):
        raise ConfigError(f"{phone} ({number_id}) is not kept: nothing to end (`reconcile keep --list` shows the list)")
    return f"{phone} ({number_id}) is kept no more; the next nightly evaluates it again"


def keep_lines(settings: Settings, engine: Engine, now: dt.datetime, history: bool = False) -> list[str]:
    """The keep list: keeps in force (or all, with history), then what the configuration protects."""
    lines = []
    for keep in keep_store.listing(engine, history=history, now=now):
        until = f" until {keep.until}" if keep.until else ""
        state = "" if not history else (" [in force]" if keep.in_force(now) else
                                        f" [ended {keep.ended_at:%Y-%m-%d} by {keep.ended_by}: {keep.ended_reason}]"
                                        if keep.ended_at else " [expired]")
        lines.append(f"{keep.phone_number or ''} {keep.number_id}: kept by {keep.kept_by} on "
                     f"{keep.kept_at:%Y-%m-%d}{until}: {keep.reason}{state}")
    flags = settings.flags
    for number_id in sorted(flags.protect_number_ids):
        lines.append(f"{number_id}: kept by config (flags.protect_number_ids)")
    if flags.protect_label_pattern:
        lines.append(f"every number whose label matches {flags.protect_label_pattern!r}: kept by config "
                     "(flags.protect_label_pattern)")
    return lines or ["no number is kept"]


def parse_day(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ConfigError(f"{option} {text!r}: give a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: not a date") from None
