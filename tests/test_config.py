"""Config: layered, typed, frozen; every mistake names the key and the file."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from reconcile.config import DEFAULT_CONFIG, load_settings
from reconcile.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def test_defaults_load_and_are_frozen():
    settings = load_settings(environ={})
    assert settings.flags.grace_days == 7 and settings.flags.idle_days_threshold == 30
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("var/reconcile.db")
    with pytest.raises(AttributeError):
        settings.flags.grace_days = 1  # type: ignore[misc]


def test_a_file_layers_over_the_defaults_and_the_environment_wins(tmp_path):
    path = write(tmp_path, '[flags]\ngrace_days = 3\n[carrier_costs]\ntwilio = { amount = "1.15", currency = "USD" }\n')
    settings = load_settings(environ={"RECONCILE_CONFIG": str(path), "TRUEDY_BASE_URL": "http://127.0.0.1:1/",
                                      "RECONCILE_DATABASE_URL": "postgresql+psycopg://x@h/db"})
    assert settings.flags.grace_days == 3 and settings.flags.idle_days_threshold == 30
    assert settings.carrier_costs["twilio"].amount == Decimal("1.15")
    assert settings.carrier_costs["telnyx"].amount is None
    assert settings.truedy.base_url == "http://127.0.0.1:1"
    assert settings.database_url == "postgresql+psycopg://x@h/db"


@pytest.mark.parametrize(("text", "message"), [
    ("[flags]\ngrace_day = 3\n", r"site.toml: unknown key flags.grace_day; did you mean 'grace_days'\?"),
    ("[flagz]\n", r"unknown table \[flagz\]; did you mean 'flags'\?"),
    ('[flags]\ngrace_days = "7"\n', r"site.toml: flags.grace_days must be a whole number, got a string"),
    ("[flags]\ngrace_days = -1\n", r"site.toml: flags.grace_days must be 0 or more"),
    ('[flags]\nprotect_label_pattern = "(("\n', r"site.toml: flags.protect_label_pattern is not a valid regular"),
    ('[flags]\nenabled_rules = ["idle", "lazy"]\n', r"unknown rule 'lazy'"),
    ('[mail]\nsmtp_security = "ssl"\n', r"site.toml: mail.smtp_security must be one of none, starttls, tls"),
    ('[notify]\nops_recipients = ["not an address"]\n', r"ops_recipients holds 'not an address'"),
    ('[schedule]\ntimezone = "Mars/Olympus"\n', r"schedule.timezone is not an IANA time zone"),
    ('[carrier_costs]\ntwilio = { amount = "cheap" }\n', r"carrier_costs.twilio is invalid"),
    ("[truedy]\npage_size = 500\n", r"truedy.page_size must be greater than 0 and at most 100"),
    ("[sync]\ncalls_overlap_minutes = 5\n", r"must be at least 15"),
    ("not toml at all [", r"site.toml: not valid TOML"),
])
def test_mistakes_name_the_file_and_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        load_settings(environ={"RECONCILE_CONFIG": str(path)})


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml, which is not a readable file"):
        load_settings(environ={"RECONCILE_CONFIG": str(tmp_path / "nope.toml")})


def test_secrets_do_not_show_themselves():
    settings = load_settings(environ={"TRUEDY_API_KEY": "tk_live_very_secret", "RECONCILE_SMTP_PASSWORD": "hunter22"})
    assert settings.truedy.api_key.reveal() == "tk_live_very_secret"
    text = repr(settings)
    assert "tk_live_very_secret" not in text and "hunter22" not in text


def test_every_default_key_is_documented_by_a_comment():
    lines = DEFAULT_CONFIG.read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[a-z_]+ = ", line):
            assert lines[index - 1].startswith("#"), f"config/default.toml: {line.split()[0]} has no comment above it"


def test_every_default_key_has_a_declared_constraint():
    import tomllib

    from reconcile.config.constraints import CONSTRAINTS

    defaults = tomllib.loads(DEFAULT_CONFIG.read_text())
    assert {t: set(keys) for t, keys in defaults.items()} == {t: set(c) for t, c in CONSTRAINTS.items()}


def test_an_environment_value_is_checked_and_named():
    with pytest.raises(ConfigError, match="environment RECONCILE_DATABASE_URL: store.database_url must start with"):
        load_settings(environ={"RECONCILE_DATABASE_URL": "mysql://x@h/db"})
