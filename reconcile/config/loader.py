"""Configuration: TOML layered with the environment, checked, built into frozen settings.

Order, later wins: `config/default.toml` (every key, documented), the file named by
RECONCILE_CONFIG, then environment variables. The defaults file is also the schema:
a key it does not have is a mistake, and a value must have its default's type. What
each key allows is declared in `constraints`. Every mistake raises ConfigError naming
the file, the key and what is allowed.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any

from reconcile.config.constraints import CONSTRAINTS, Invalid
from reconcile.config.secret import Secret
from reconcile.config.settings import (
    FlagSettings,
    MailSettings,
    NotifySettings,
    ReleaseSettings,
    ScheduleSettings,
    Settings,
    SyncSettings,
    TruedySettings,
)
from reconcile.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).resolve().parent / "default.toml"  # package data, beside this module
STATE_DIR = Path("var")  # where state goes by default: relative to the working directory
ENV_KEYS = {  # environment variable -> the key it sets (the environment wins over every file)
    "TRUEDY_BASE_URL": "truedy.base_url",
    "RECONCILE_DATABASE_URL": "store.database_url",
    "RECONCILE_REPORTS_DIR": "reports.dir",
    "RECONCILE_WEBHOOK_URL": "notify.webhook_url",
}


def load_settings(
    environ: dict[str, str] | None = None, config_path: str | os.PathLike[str] | None = None,
    config_flag: str = "--config",
) -> Settings:
    """Read the defaults, the RECONCILE_CONFIG file (or `config_path`, given as `config_flag`) and the environment."""
    env = dict(os.environ if environ is None else environ)
    defaults = _read_toml(DEFAULT_CONFIG)
    merged = _copy_tables(defaults)
    sources = [str(DEFAULT_CONFIG)]
    path = config_path or env.get("RECONCILE_CONFIG") or None
    origin = {key: str(DEFAULT_CONFIG) for key in _leaf_keys(defaults)}
    if path:
        user_file = Path(path)
        if not user_file.is_file():
            named_by = config_flag if config_path else "RECONCILE_CONFIG"
            raise ConfigError(f"{named_by} names {user_file}, which is not a readable file")
        layer = _read_toml(user_file)
        _overlay(merged, layer, defaults, str(user_file), origin)
        sources.append(str(user_file))
    for name, key in ENV_KEYS.items():
        if env.get(name):
            table, leaf = key.split(".", 1)
            merged[table][leaf] = env[name]
            origin[key] = f"environment {name}"
    return _build(_checked(merged, origin), env, tuple(sources))


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


KIND_NAMES = ((bool, "true or false"), (int, "a whole number"), (float, "a number"), (str, "a string"),
              (list, "a list of strings"), (dict, "a table"))  # bool first: a bool is an int too


def _kind_name(value: Any) -> str:
    return next((name for kind, name in KIND_NAMES if isinstance(value, kind)), type(value).__name__)


def _checked(merged: dict[str, Any], origin: dict[str, str]) -> dict[str, Any]:
    """Every key's value as its constraint returns it, by "table.key"."""
    values: dict[str, Any] = {}
    for table, checks in CONSTRAINTS.items():
        for name, check in checks.items():
            key = f"{table}.{name}"
            try:
                values[key] = check(merged[table][name])
            except Invalid as exc:
                raise ConfigError(f"{origin.get(key, 'environment')}: {key} {exc}") from None
    return values


def _build(v: dict[str, Any], env: dict[str, str], sources: tuple[str, ...]) -> Settings:
    """The settings from checked values (`v`, by "table.key") and the secrets in the environment."""
    truedy = TruedySettings(
        base_url=v["truedy.base_url"], api_key=Secret(env.get("TRUEDY_API_KEY", "")),
        timeout_s=float(v["truedy.timeout_s"]), max_concurrency=int(v["truedy.max_concurrency"]),
        page_size=int(v["truedy.page_size"]), calls_page_size=int(v["truedy.calls_page_size"]),
        max_attempts=int(v["truedy.max_attempts"]), backoff_base_s=float(v["truedy.backoff_base_s"]),
        backoff_cap_s=float(v["truedy.backoff_cap_s"]), retry_after_cap_s=float(v["truedy.retry_after_cap_s"]),
        run_deadline_s=float(v["truedy.run_deadline_s"]),
    )
    mail = MailSettings(
        outbox_dir=_project_path(Path(v["mail.outbox_dir"])), smtp_host=v["mail.smtp_host"],
        smtp_port=int(v["mail.smtp_port"]), smtp_security=v["mail.smtp_security"],
        smtp_username=v["mail.smtp_username"], smtp_password=Secret(env.get("RECONCILE_SMTP_PASSWORD", "")),
        from_address=v["mail.from_address"], smtp_timeout_s=float(v["mail.smtp_timeout_s"]),
        smtp_max_attempts=int(v["mail.smtp_max_attempts"]), smtp_ca_file=v["mail.smtp_ca_file"],
    )
    return Settings(
        truedy=truedy,
        database_url=v["store.database_url"] or f"sqlite:///{_project_path(STATE_DIR / 'reconcile.db')}",
        sync=SyncSettings(calls_backfill_days=int(v["sync.calls_backfill_days"]),
                          calls_overlap_minutes=int(v["sync.calls_overlap_minutes"])),
        flags=FlagSettings(grace_days=int(v["flags.grace_days"]), idle_days_threshold=int(v["flags.idle_days_threshold"]),
                           protect_number_ids=v["flags.protect_number_ids"],
                           protect_label_pattern=v["flags.protect_label_pattern"],
                           enabled_rules=v["flags.enabled_rules"]),
        carrier_costs={name: v[f"carrier_costs.{name}"] for name in CONSTRAINTS["carrier_costs"]},
        reports_dir=_project_path(Path(v["reports.dir"])),
        mail=mail,
        notify=NotifySettings(
            owner_metadata_key=v["notify.owner_metadata_key"], default_recipients=v["notify.default_recipients"],
            finance_recipients=v["notify.finance_recipients"], ops_recipients=v["notify.ops_recipients"],
            cc=v["notify.cc"], bcc=v["notify.bcc"], digest_max_rows=int(v["notify.digest_max_rows"]),
            webhook_url=Secret(v["notify.webhook_url"]), webhook_headlines=bool(v["notify.webhook_headlines"]),
            contact=v["notify.contact"]),
        schedule=ScheduleSettings(
            timezone=v["schedule.timezone"], nightly=v["schedule.nightly"], cleanup=v["schedule.cleanup"],
            monthly=v["schedule.monthly"], misfire_grace_hours=int(v["schedule.misfire_grace_hours"]),
            overdue_after_hours=int(v["schedule.overdue_after_hours"]), release=v["schedule.release"],
            stop_grace_s=float(v["schedule.stop_grace_s"])),
        reports_base_url=v["reports.base_url"],
        release=ReleaseSettings(min_flagged_days=int(v["release.min_flagged_days"]),
                                notice_days=int(v["release.notice_days"]), max_per_run=int(v["release.max_per_run"]),
                                plan_max_age_days=int(v["release.plan_max_age_days"])),
        billing_account=(v["reports.billing_account_id"], v["reports.billing_account_name"]),
        metrics_textfile=_project_path(Path(v["metrics.textfile"])) if v["metrics.textfile"] else None,
        log_format=v["logging.format"],
        log_level=v["logging.level"],
        sources=sources,
    )


def _project_path(path: Path) -> Path:
    return path if path.is_absolute() else Path.cwd() / path
