"""Configuration: TOML layered with the environment, validated into frozen objects.

Order, later wins: `config/default.toml` (every key, documented), the file named by
RECONCILE_CONFIG, then environment variables. The defaults file is also the schema:
a key it does not have is a mistake, and a value must have its default's type. Every
mistake raises ConfigError naming the file, the key and what is allowed.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from reconcile.addresses import is_email
from reconcile.errors import ConfigError
from reconcile.money import parse_amount, parse_currency

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "default.toml"
SANDBOX_API_KEY = "sandbox-key-not-secret"

RULE_NAMES = ("unassigned", "orphaned_agent", "idle")


class Secret:
    """A string that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class TruedySettings:
    base_url: str
    api_key: Secret
    timeout_s: float
    max_concurrency: int
    page_size: int
    calls_page_size: int
    max_attempts: int
    backoff_base_s: float
    backoff_cap_s: float
    retry_after_cap_s: float
    run_deadline_s: float


@dataclass(frozen=True)
class SyncSettings:
    calls_backfill_days: int
    calls_overlap_minutes: int


@dataclass(frozen=True)
class CarrierCost:
    amount: Decimal | None
    currency: str


@dataclass(frozen=True)
class FlagSettings:
    grace_days: int
    idle_days_threshold: int
    protect_number_ids: frozenset[str]
    protect_label_pattern: str
    enabled_rules: tuple[str, ...]


@dataclass(frozen=True)
class MailSettings:
    outbox_dir: Path
    smtp_host: str
    smtp_port: int
    smtp_security: str
    smtp_username: str
    smtp_password: Secret
    from_address: str
    smtp_timeout_s: float = 30.0
    smtp_max_attempts: int = 4
    smtp_ca_file: str = ""


@dataclass(frozen=True)
class NotifySettings:
    owner_metadata_key: str
    default_recipients: tuple[str, ...]
    finance_recipients: tuple[str, ...]
    ops_recipients: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    digest_max_rows: int = 50


@dataclass(frozen=True)
class ScheduleSettings:
    timezone: str
    nightly: str
    cleanup: str
    monthly: str
    misfire_grace_hours: int = 20
    stop_grace_s: float = 60.0


@dataclass(frozen=True)
class Settings:
    truedy: TruedySettings
    database_url: str
    sync: SyncSettings
    flags: FlagSettings
    carrier_costs: dict[str, CarrierCost]
    reports_dir: Path
    mail: MailSettings
    notify: NotifySettings
    schedule: ScheduleSettings
    log_format: str
    log_level: str
    sources: tuple[str, ...] = field(default=())


def load_settings(
    environ: dict[str, str] | None = None, config_path: str | os.PathLike[str] | None = None
) -> Settings:
    """Read the defaults, the RECONCILE_CONFIG file (or `config_path`) and the environment."""
    env = dict(os.environ if environ is None else environ)
    defaults = _read_toml(DEFAULT_CONFIG)
    merged = _copy_tables(defaults)
    sources = [str(DEFAULT_CONFIG)]
    path = config_path or env.get("RECONCILE_CONFIG") or None
    origin = {key: str(DEFAULT_CONFIG) for key in _leaf_keys(defaults)}
    if path:
        user_file = Path(path)
        if not user_file.is_file():
            raise ConfigError(f"RECONCILE_CONFIG names {user_file}, which is not a readable file")
        layer = _read_toml(user_file)
        _overlay(merged, layer, defaults, str(user_file), origin)
        sources.append(str(user_file))
    return _build(merged, env, origin, tuple(sources))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x}); "
                          "save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None


def _copy_tables(tables: dict[str, Any]) -> dict[str, Any]:
    return {name: dict(values) if isinstance(values, dict) else values for name, values in tables.items()}


def _leaf_keys(tables: dict[str, Any]) -> list[str]:
    return [f"{table}.{key}" for table, values in tables.items() for key in values]


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(sorted(choices))}"


def _overlay(
    merged: dict[str, Any], layer: dict[str, Any], defaults: dict[str, Any], source: str, origin: dict[str, str]
) -> None:
    for table, values in layer.items():
        if table not in defaults:
            raise ConfigError(f"{source}: unknown table [{table}]{_suggest(table, list(defaults))}")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{table}] must be a table")
        for key, value in values.items():
            if key not in defaults[table]:
                raise ConfigError(f"{source}: unknown key {table}.{key}{_suggest(key, list(defaults[table]))}")
            expected = defaults[table][key]
            if not _same_kind(expected, value):
                raise ConfigError(
                    f"{source}: {table}.{key} must be {_kind_name(expected)}, got {_kind_name(value)}"
                )
            merged[table][key] = value
            origin[f"{table}.{key}"] = source


def _same_kind(expected: Any, value: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool)
    if isinstance(expected, float):
        return isinstance(value, int | float)
    if isinstance(expected, list):
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return isinstance(value, type(expected))


def _kind_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list of strings"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


class _Reader:
    """Typed access to the merged tables; every error names the key and its file."""

    def __init__(self, merged: dict[str, Any], origin: dict[str, str]) -> None:
        self.merged = merged
        self.origin = origin

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.origin.get(key, 'environment')}: {key} {message}")

    def get(self, key: str) -> Any:
        table, name = key.split(".", 1)
        return self.merged[table][name]

    def positive(self, key: str, minimum: float = 0, maximum: float | None = None) -> Any:
        value = self.get(key)
        if value <= minimum or (maximum is not None and value > maximum):
            allowed = f"greater than {minimum}" + (f" and at most {maximum}" if maximum is not None else "")
            raise self.fail(key, f"must be {allowed}, got {value}")
        return value

    def non_negative(self, key: str) -> int:
        value = self.get(key)
        if value < 0:
            raise self.fail(key, f"must be 0 or more, got {value}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.get(key)
        if value not in allowed:
            raise self.fail(key, f"must be one of {', '.join(allowed)}, got {value!r}")
        return value


def _addresses(reader: _Reader, key: str) -> tuple[str, ...]:
    values = tuple(reader.get(key))
    for address in values:
        if not is_email(address):
            raise reader.fail(key, f"holds {address!r}, which is not an e-mail address")
    return values


def _from_address(reader: _Reader) -> str:
    """`Name <addr@host>` or `addr@host`; nothing that could break a header."""
    value = reader.get("mail.from_address")
    match = re.fullmatch(r"(?:([^<>\r\n\"]*)<([^<>\s]+)>|([^<>\s]+))", value.strip())
    address = match and (match[2] or match[3])
    if not address or not (is_email(address) or re.fullmatch(r"[\w.+-]+@localhost", address)):
        raise reader.fail("mail.from_address", f"is not an e-mail address: {value!r}")
    return value.strip()


def _build(merged: dict[str, Any], env: dict[str, str], origin: dict[str, str], sources: tuple[str, ...]) -> Settings:
    r = _Reader(merged, origin)
    base_url = env.get("TRUEDY_BASE_URL") or r.get("truedy.base_url")
    if "TRUEDY_BASE_URL" in env and env["TRUEDY_BASE_URL"]:
        origin["truedy.base_url"] = "environment TRUEDY_BASE_URL"
    if not re.match(r"^https?://[^\s/]+", base_url):
        raise r.fail("truedy.base_url", f"must be an http(s) URL, got {base_url!r}")
    truedy = TruedySettings(
        base_url=base_url.rstrip("/"),
        api_key=Secret(env.get("TRUEDY_API_KEY", "")),
        timeout_s=float(r.positive("truedy.timeout_s")),
        max_concurrency=int(r.positive("truedy.max_concurrency", 0, 64)),
        page_size=int(r.positive("truedy.page_size", 0, 100)),
        calls_page_size=int(r.positive("truedy.calls_page_size", 0, 500)),
        max_attempts=int(r.positive("truedy.max_attempts", 0, 50)),
        backoff_base_s=float(r.positive("truedy.backoff_base_s")),
        backoff_cap_s=float(r.positive("truedy.backoff_cap_s")),
        retry_after_cap_s=float(r.positive("truedy.retry_after_cap_s")),
        run_deadline_s=float(r.positive("truedy.run_deadline_s")),
    )
    database_url = env.get("RECONCILE_DATABASE_URL") or r.get("store.database_url")
    if not database_url:
        database_url = f"sqlite:///{PROJECT_ROOT / 'var' / 'reconcile.db'}"
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", database_url):
        raise r.fail("store.database_url", "must start with sqlite:// or postgresql:// (RECONCILE_DATABASE_URL too)")

    overlap = r.non_negative("sync.calls_overlap_minutes")
    if overlap < 15:
        raise r.fail("sync.calls_overlap_minutes", f"must be at least 15 (calls can appear 15 minutes late), got {overlap}")
    sync = SyncSettings(calls_backfill_days=int(r.positive("sync.calls_backfill_days")), calls_overlap_minutes=overlap)

    pattern = r.get("flags.protect_label_pattern")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise r.fail("flags.protect_label_pattern", f"is not a valid regular expression ({exc})") from None
    rules = tuple(r.get("flags.enabled_rules"))
    for rule in rules:
        if rule not in RULE_NAMES:
            raise r.fail("flags.enabled_rules", f"names unknown rule {rule!r}; allowed: {', '.join(RULE_NAMES)}")
    flags = FlagSettings(
        grace_days=r.non_negative("flags.grace_days"),
        idle_days_threshold=int(r.positive("flags.idle_days_threshold")),
        protect_number_ids=frozenset(r.get("flags.protect_number_ids")),
        protect_label_pattern=pattern,
        enabled_rules=rules,
    )

    carrier_costs = {}
    for provider in ("twilio", "telnyx"):
        key = f"carrier_costs.{provider}"
        table = r.get(key)
        unknown = set(table) - {"amount", "currency"}
        if unknown:
            raise r.fail(key, f"has unknown field {sorted(unknown)[0]!r}; allowed: amount, currency")
        try:
            amount = parse_amount(table["amount"]) if table.get("amount", "") != "" else None
            currency = parse_currency(table.get("currency", "USD"))
        except ValueError as exc:
            raise r.fail(key, f"is invalid: {exc}") from None
        if amount is not None and amount < 0:
            raise r.fail(key, "amount must not be negative")
        carrier_costs[provider] = CarrierCost(amount=amount, currency=currency)

    reports_dir = Path(env.get("RECONCILE_REPORTS_DIR") or r.get("reports.dir"))
    mail = MailSettings(
        outbox_dir=_project_path(Path(r.get("mail.outbox_dir"))),
        smtp_host=r.get("mail.smtp_host"),
        smtp_port=int(r.positive("mail.smtp_port", 0, 65535)),
        smtp_security=r.choice("mail.smtp_security", ("none", "starttls", "tls")),
        smtp_username=r.get("mail.smtp_username"),
        smtp_password=Secret(env.get("RECONCILE_SMTP_PASSWORD", "")),
        from_address=_from_address(r),
        smtp_timeout_s=float(r.positive("mail.smtp_timeout_s")),
        smtp_max_attempts=int(r.positive("mail.smtp_max_attempts", 0, 20)),
        smtp_ca_file=r.get("mail.smtp_ca_file"),
    )
    notify = NotifySettings(
        owner_metadata_key=r.get("notify.owner_metadata_key"),
        default_recipients=_addresses(r, "notify.default_recipients"),
        finance_recipients=_addresses(r, "notify.finance_recipients"),
        ops_recipients=_addresses(r, "notify.ops_recipients"),
        cc=_addresses(r, "notify.cc"),
        bcc=_addresses(r, "notify.bcc"),
        digest_max_rows=int(r.positive("notify.digest_max_rows", 0, 10_000)),
    )
    timezone = r.get("schedule.timezone")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise r.fail("schedule.timezone", f"is not an IANA time zone: {timezone!r}") from None
    for job in ("nightly", "cleanup", "monthly"):
        expression = r.get(f"schedule.{job}")
        try:
            if len(expression.split()) != 5:
                raise ValueError("not 5 fields")
            trigger = CronTrigger.from_crontab(expression, timezone=ZoneInfo(timezone))
        except ValueError as exc:
            raise r.fail(f"schedule.{job}", f"must be a cron expression of 5 fields (minute hour day month "
                                            f"weekday), got {expression!r} ({exc})") from None
        if trigger.get_next_fire_time(None, dt.datetime.now(dt.UTC)) is None:
            raise r.fail(f"schedule.{job}", f"is {expression!r}, which never fires (no such date, e.g. 31 February)")
    schedule = ScheduleSettings(
        timezone=timezone, nightly=r.get("schedule.nightly"), cleanup=r.get("schedule.cleanup"),
        monthly=r.get("schedule.monthly"), misfire_grace_hours=int(r.positive("schedule.misfire_grace_hours")),
        stop_grace_s=float(r.positive("schedule.stop_grace_s")),
    )
    return Settings(
        truedy=truedy,
        database_url=database_url,
        sync=sync,
        flags=flags,
        carrier_costs=carrier_costs,
        reports_dir=_project_path(reports_dir),
        mail=mail,
        notify=notify,
        schedule=schedule,
        log_format=r.choice("logging.format", ("text", "json")),
        log_level=r.choice("logging.level", ("DEBUG", "INFO", "WARNING", "ERROR")),
        sources=sources,
    )


def _project_path(path: Path) -> Path:
    return path if path.is_absolute() else Path.cwd() / path

