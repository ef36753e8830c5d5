"""The Prometheus textfile: written atomically after each run, read back with prometheus_client's parser."""

from __future__ import annotations

import csv
import dataclasses
from collections import defaultdict
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from reconcile.config import SANDBOX_API_KEY, Secret, load_settings
from reconcile.errors import UpstreamError
from reconcile.jobs.runner import execute_job
from reconcile.store.schema import flag_history


def samples(path) -> dict[tuple[str, tuple], float]:
    parsed = text_string_to_metric_families(path.read_text(encoding="utf-8"))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in parsed for s in family.samples}


def test_the_textfile_after_a_night_and_after_a_failure(make_sandbox, store, tmp_path):
    server = make_sandbox(numbers=80)
    base = load_settings(environ={})
    textfile = tmp_path / "textfile" / "reconcile.prom"
    settings = dataclasses.replace(
        base, reports_dir=tmp_path / "reports", metrics_textfile=textfile,
        truedy=dataclasses.replace(base.truedy, base_url=server.url, api_key=Secret(SANDBOX_API_KEY)),
        mail=dataclasses.replace(base.mail, outbox_dir=tmp_path / "outbox"))
    result = execute_job(settings, "nightly", "cron", clock=lambda: server.account.now, engine=store)
    assert result.status == "succeeded"
    values = samples(textfile)
    assert values[("reconcile_job_last_exit_code", (("job", "nightly"),))] == 0
    assert values[("reconcile_job_last_success_timestamp_seconds", (("job", "nightly"),))] > 1.7e9
    assert values[("reconcile_job_last_success_duration_seconds", (("job", "nightly"),))] >= 0
    (flagged_csv,) = (tmp_path / "reports").glob("nightly-*/flagged.csv")
    with flagged_csv.open(encoding="utf-8", newline="") as handle:
        flagged = list(csv.DictReader(handle))
    per_rule = defaultdict(int)
    waste: dict[str, Decimal] = defaultdict(Decimal)
    for row in flagged:
        per_rule[row["flag"]] += 1
        if row["monthly_savings"]:
            waste[row["currency"]] += Decimal(row["monthly_savings"])
    assert {rule: values[("reconcile_flagged_numbers", (("rule", rule),))] for rule in per_rule} == per_rule
    for currency, amount in waste.items():
        assert Decimal(str(values[("reconcile_monthly_waste", (("currency", currency),))])) == amount
    assert values[("reconcile_sync_http_requests", ())] > 0
    with store.connect() as connection:  # an unknown saving's currency is NULL, never the text 'NaN' (PostgreSQL)
        currencies = set(connection.execute(select(flag_history.c.currency).distinct()).scalars())
    assert None in currencies and "NaN" not in currencies
    assert ("reconcile_sync_http_rate_limited", ()) in values and ("reconcile_sync_data_issues", ()) in values
    assert [p.name for p in textfile.parent.iterdir()] == ["reconcile.prom"], "no temporary file left behind"

    def failing(s, e, c):
        raise UpstreamError("the Truedy API is unavailable")

    with pytest.raises(UpstreamError):
        execute_job(settings, "nightly", "cron", clock=lambda: server.account.now, engine=store,
                    jobs={"nightly": failing})
    after = samples(textfile)
    assert after[("reconcile_job_last_exit_code", (("job", "nightly"),))] == 3
    assert after[("reconcile_job_last_success_timestamp_seconds", (("job", "nightly"),))] == \
        values[("reconcile_job_last_success_timestamp_seconds", (("job", "nightly"),))]


def test_metrics_are_off_by_default():
    assert load_settings(environ={}).metrics_textfile is None
