"""What each configuration key allows, declared per table.

A check takes the value (already of its default's type, see the loader) and returns
the value to use, or raises `Invalid` with what is wrong, said after the key:
"truedy.page_size must be greater than 0 and at most 100, got 500".
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from reconcile.addresses import is_email
from reconcile.config.settings import CarrierCost
from reconcile.money import parse_amount, parse_currency

Check = Callable[[Any], Any]


class Invalid(ValueError):
    """What is wrong with a value, said after its key."""


def positive(maximum: float | None = None) -> Check:
    def check(value: Any) -> Any:
        if value <= 0 or (maximum is not None and value > maximum):
            allowed = "greater than 0" + (f" and at most {maximum}" if maximum is not None else "")
            raise Invalid(f"must be {allowed}, got {value}")
        return value
    return check


def at_least(minimum: int, why: str = "") -> Check:
    def check(value: Any) -> Any:
        if value < minimum:
            allowed = "0 or more" if minimum == 0 else f"at least {minimum}" + (f" ({why})" if why else "")
            raise Invalid(f"must be {allowed}, got {value}")
        return value
    return check


def one_of(*allowed: str) -> Check:
    def check(value: Any) -> Any:
        if value not in allowed:
            raise Invalid(f"must be one of {', '.join(allowed)}, got {value!r}")
        return value
    return check


def http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise Invalid(f"must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def secret_http_url(value: str) -> str:
    """Empty, or an http(s) URL; the value is never repeated in the error (it may hold a token)."""
    if value and not re.match(r"^https?://[^\s/]+", value):
        raise Invalid("must be an http(s) URL (the value is a secret: not shown)")
    return value


def database_url(value: str) -> str:
    if value and not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
        raise Invalid("must start with sqlite:// or postgresql://")
    return value


def regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise Invalid(f"is not a valid regular expression ({exc})") from None
    return value


def rule_names(value: list[str]) -> tuple[str, ...]:
    # imported here, not at the top: the rules module imports the settings, which import this module
    from reconcile.analysis.rules import RULES

    for name in value:
        if name not in RULES:
            raise Invalid(f"names unknown rule {name!r}; allowed: {', '.join(RULES)}")
    return tuple(value)


def addresses(value: list[str]) -> tuple[str, ...]:
    for address in value:
        if not is_email(address):
            raise Invalid(f"holds {address!r}, which is not an e-mail address")
    return tuple(value)


def sender(value: str) -> str:
    """`Name <addr@host>` or `addr@host`; nothing that could break a header."""
    match = re.fullmatch(r"(?:([^<>\r\n\"]*)<([^<>\s]+)>|([^<>\s]+))", value.strip())
    address = match and (match[2] or match[3])
    if not address or not (is_email(address) or re.fullmatch(r"[\w.+-]+@localhost", address)):
        raise Invalid(f"is not an e-mail address: {value!r}")
    return value.strip()


def carrier_cost(value: Mapping[str, Any]) -> CarrierCost:
    unknown = set(value) - {"amount", "currency"}
    if unknown:
        raise Invalid(f"has unknown field {sorted(unknown)[0]!r}; allowed: amount, currency")
    try:
        amount = parse_amount(value["amount"]) if value.get("amount", "") != "" else None
        currency = parse_currency(value.get("currency", "USD"))
    except ValueError as exc:
        raise Invalid(f"is invalid: {exc}") from None
    if amount is not None and amount < 0:
        raise Invalid("amount must not be negative")
    return CarrierCost(amount=amount, currency=currency)


def timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"is not an IANA time zone: {value!r}") from None
    return value


def cron(value: str) -> str:
    try:
        if len(value.split()) != 5:
            raise ValueError("not 5 fields")
        trigger = CronTrigger.from_crontab(value, timezone=dt.UTC)
    except ValueError as exc:
        raise Invalid(f"must be a cron expression of 5 fields (minute hour day month weekday), "
                      f"got {value!r} ({exc})") from None
    if trigger.get_next_fire_time(None, dt.datetime.now(dt.UTC)) is None:
        raise Invalid(f"is {value!r}, which never fires (no such date, e.g. 31 February)")
    return value


def non_empty(value: str) -> str:
    if not value.strip():
        raise Invalid("must not be empty")
    return value.strip()


def anything(value: Any) -> Any:
    return value


CONSTRAINTS: dict[str, dict[str, Check]] = {
    "truedy": {
        "base_url": http_url, "timeout_s": positive(), "max_concurrency": positive(64),
        "page_size": positive(100), "calls_page_size": positive(500), "max_attempts": positive(50),
        "backoff_base_s": positive(), "backoff_cap_s": positive(), "retry_after_cap_s": positive(),
        "run_deadline_s": positive(),
    },
    "store": {"database_url": database_url},
    "sync": {"calls_backfill_days": positive(),
             "calls_overlap_minutes": at_least(15, "calls can appear 15 minutes late")},
    "flags": {"grace_days": at_least(0), "idle_days_threshold": positive(), "protect_number_ids": frozenset,
              "protect_label_pattern": regex, "enabled_rules": rule_names},
    "carrier_costs": {"twilio": carrier_cost, "telnyx": carrier_cost},
    "reports": {"dir": anything, "base_url": lambda value: http_url(value) if value else "",
                "billing_account_id": non_empty, "billing_account_name": non_empty},
    "mail": {"outbox_dir": anything, "smtp_host": anything, "smtp_port": positive(65535),
             "smtp_security": one_of("none", "starttls", "tls"), "smtp_username": anything, "from_address": sender,
             "smtp_timeout_s": positive(), "smtp_max_attempts": positive(20), "smtp_ca_file": anything},
    "notify": {"owner_metadata_key": anything, "contact": lambda value: addresses([value])[0] if value else "", "default_recipients": addresses, "finance_recipients": addresses,
               "ops_recipients": addresses, "cc": addresses, "bcc": addresses, "digest_max_rows": positive(10_000),
               "webhook_url": secret_http_url, "webhook_headlines": anything},
    "schedule": {"timezone": timezone, "nightly": cron, "cleanup": cron, "monthly": cron,
                 "release": lambda value: cron(value) if value else "",
                 "misfire_grace_hours": positive(), "overdue_after_hours": positive(24 * 40), "stop_grace_s": positive()},
    "release": {"min_flagged_days": at_least(0), "notice_days": at_least(0), "max_per_run": positive(10_000),
                "plan_max_age_days": positive(365)},
    "metrics": {"textfile": anything},
    "logging": {"format": one_of("text", "json"), "level": one_of("DEBUG", "INFO", "WARNING", "ERROR")},
}
