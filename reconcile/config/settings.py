"""The validated settings: frozen objects, one per table of `config/default.toml`."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from reconcile.config.secret import Secret

SANDBOX_API_KEY = "sandbox-key-not-secret"  # the local sandbox's published key: no secret


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
    webhook_url: Secret = Secret("")
    contact: str = ""
    webhook_headlines: bool = False


@dataclass(frozen=True)
class ScheduleSettings:
    timezone: str
    nightly: str
    cleanup: str
    monthly: str
    misfire_grace_hours: int = 20
    release: str = ""          # the release job's cron expression; empty: off
    overdue_after_hours: int = 3
    stop_grace_s: float = 60.0


@dataclass(frozen=True)
class ReleaseSettings:
    min_flagged_days: int = 30
    notice_days: int = 7
    max_per_run: int = 50
    plan_max_age_days: int = 30


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
    metrics_textfile: Path | None = None
    reports_base_url: str = ""
    billing_account: tuple[str, str] = ("truedy", "Truedy")  # (id, name), as focus.csv names it
    release: ReleaseSettings = field(default_factory=ReleaseSettings)
    sources: tuple[str, ...] = field(default=())
