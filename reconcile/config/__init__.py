"""Configuration: `load_settings()` and the frozen settings it returns (see `loader`)."""

from reconcile.config.loader import DEFAULT_CONFIG, STATE_DIR, load_settings
from reconcile.config.secret import Secret
from reconcile.config.settings import (
    SANDBOX_API_KEY,
    CarrierCost,
    FlagSettings,
    MailSettings,
    NotifySettings,
    ScheduleSettings,
    Settings,
    SyncSettings,
    TruedySettings,
)

__all__ = [
    "DEFAULT_CONFIG", "SANDBOX_API_KEY", "STATE_DIR", "CarrierCost", "FlagSettings", "MailSettings",
    "NotifySettings", "ScheduleSettings", "Secret", "Settings", "SyncSettings", "TruedySettings", "load_settings",
]
