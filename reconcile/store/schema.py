"""The store's tables (SQLAlchemy Core). Migrations in `migrations/` create them.

Snapshots are SCD type 2: `number_versions` and `agent_versions` hold one row per
version; `valid_from_run` opened it, `valid_to_run` closed it (NULL while current).
The inventory as of run R is the versions with valid_from_run <= R and (valid_to_run
is NULL or > R). Calls are append-only, keyed by the API's id.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    false,
    or_,
)

from reconcile.store.types import Money, UTCDateTime

metadata = MetaData()


def open_at(opened: Column[Any], closed: Column[Any], run: Any) -> ColumnElement[bool]:
    """The one "open at run R" condition: opened at or before R, and not closed, or closed after R.

    For versions (valid_from_run, valid_to_run) and flag streaks (first_flagged_run,
    resolved_run); `run` is a run id or a run table's id column (for one row per run).
    """
    return and_(opened <= run, or_(closed.is_(None), closed > run))

sync_runs = Table(
    "sync_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("as_of", UTCDateTime, nullable=False),
    # running -> complete | failed | abandoned (a killed run, found by the next one)
    Column("status", String(16), nullable=False),
    Column("counts", Text),
    Column("error", Text),
)

number_versions = Table(
    "number_versions", metadata,
    Column("version_id", Integer, primary_key=True, autoincrement=True),
    Column("number_id", String(100), nullable=False),
    Column("phone_number", String(32), nullable=False),
    Column("label", Text),
    Column("country_code", String(2), nullable=False),
    Column("phone_number_type", String(16), nullable=False),
    Column("provider", String(16), nullable=False),
    Column("is_truedy_managed", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("features", Text, nullable=False),
    Column("upfront_cost", Money),
    Column("monthly_cost", Money),
    Column("currency", String(3)),
    Column("purchased_at", UTCDateTime, nullable=False),
    Column("released_at", UTCDateTime),
    Column("inbound_agent_id", String(100)),
    Column("inbound_assigned_at", UTCDateTime),
    Column("outbound_agent_id", String(100)),
    Column("outbound_assigned_at", UTCDateTime),
    Column("row_hash", String(32), nullable=False),
    Column("valid_from_run", Integer, ForeignKey("sync_runs.id"), nullable=False),
    Column("valid_to_run", Integer, ForeignKey("sync_runs.id")),
    # the API's record as served (any field, any order): equal means unchanged, so the
    # next sync need not parse it again; NULL when unknown (then the record is parsed)
    Column("source_hash", String(32)),
)
Index("ix_number_versions_number", number_versions.c.number_id, number_versions.c.valid_from_run)
Index("ix_number_versions_open", number_versions.c.valid_to_run)

agent_versions = Table(
    "agent_versions", metadata,
    Column("version_id", Integer, primary_key=True, autoincrement=True),
    Column("agent_id", String(100), nullable=False),
    Column("name", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("archived_at", UTCDateTime),
    Column("metadata", Text, nullable=False),
    Column("row_hash", String(32), nullable=False),
    Column("valid_from_run", Integer, ForeignKey("sync_runs.id"), nullable=False),
    Column("valid_to_run", Integer, ForeignKey("sync_runs.id")),
)
Index("ix_agent_versions_agent", agent_versions.c.agent_id, agent_versions.c.valid_from_run)
Index("ix_agent_versions_open", agent_versions.c.valid_to_run)

calls = Table(
    "calls", metadata,
    Column("call_id", String(100), primary_key=True),
    Column("agent_id", String(100), nullable=False),
    Column("number_id", String(100)),
    Column("direction", String(8), nullable=False),
    Column("from_number", String(32)),
    Column("to_number", String(32)),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=False),
    Column("duration_seconds", Integer, nullable=False),
    Column("cost_amount", Money, nullable=False),
    Column("cost_currency", String(3), nullable=False),
    Column("sync_run_id", Integer, ForeignKey("sync_runs.id"), nullable=False),
)
Index("ix_calls_number_started", calls.c.number_id, calls.c.direction, calls.c.started_at)
Index("ix_calls_started", calls.c.started_at)

# each number's newest call, kept by every sync as it commits its calls (reconcile.store.staging):
# the nightly review reads a row per number here, not every call the store has ever held
number_last_call = Table(
    "number_last_call", metadata,
    Column("number_id", String(100), primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
)

sync_state = Table(
    "sync_state", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("sync_run_id", Integer, ForeignKey("sync_runs.id"), nullable=False),
)

data_issues = Table(
    "data_issues", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sync_run_id", Integer, ForeignKey("sync_runs.id"), nullable=False),
    Column("record_type", String(32), nullable=False),
    Column("record_id", String(100), nullable=False),
    Column("field", String(100), nullable=False),
    Column("reason", Text, nullable=False),
)
Index("ix_data_issues_run", data_issues.c.sync_run_id)

flag_history = Table(
    "flag_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number_id", String(100), nullable=False),
    Column("flag", String(32), nullable=False),
    Column("first_flagged_at", UTCDateTime, nullable=False),
    Column("first_flagged_run", Integer, ForeignKey("sync_runs.id"), nullable=False),
    Column("last_flagged_run", Integer, ForeignKey("sync_runs.id"), nullable=False),
    # the saving at the last evaluation; realised when the streak ends `released`
    Column("monthly_savings", Money),
    Column("currency", String(3)),
    Column("resolved_at", UTCDateTime),
    Column("resolved_run", Integer, ForeignKey("sync_runs.id")),
    # released | assigned | used_again | protected | rule_disabled | no_longer_flagged
    Column("resolution", String(32)),
)
Index("ix_flag_history_number", flag_history.c.number_id, flag_history.c.first_flagged_run)
Index("ix_flag_history_open", flag_history.c.resolved_run)

# the nightly trend's figures of a run, kept once its flags are final (reconcile.store.trend)
run_totals = Table(
    "run_totals", metadata,
    Column("run_id", Integer, ForeignKey("sync_runs.id"), primary_key=True),
    Column("currency", String(3), primary_key=True),  # '' for imported numbers (no Truedy fee)
    Column("numbers", Integer, nullable=False),       # active and pending
    Column("monthly_cost", Money),
    Column("waste", Money),                           # the flagged numbers' monthly savings; NULL for none
)

# the numbers owned at the newest evaluated run, a column at a time (reconcile.store.inventory_copy): the
# next night reads it whole and patches in the versions opened and closed since, not every version again
inventory_copies = Table(
    "inventory_copies", metadata,
    Column("run_id", Integer, ForeignKey("sync_runs.id"), primary_key=True),
    Column("layout", String(32), nullable=False),   # what `body` holds and how (a reader refuses another)
    Column("numbers", Integer, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

sent_digests = Table(
    "sent_digests", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("sync_runs.id"), nullable=False),
    Column("recipient", String(254), nullable=False),
    Column("kind", String(32), nullable=False),    # cleanup (alerts will share the log)
    Column("sent_at", UTCDateTime, nullable=False),
    Column("message_id", String(200), nullable=False),
    Column("numbers", Integer, nullable=False),
    Column("number_ids", Text, nullable=False),     # JSON list: what the recipient was told
    # sending (logged before the server had it; if it stays so, the process died: fate unknown)
    # -> sent (the server accepted it) | refused (JSON: address -> the server's answer)
    Column("status", String(16), nullable=False, server_default="sent"),
    Column("refused", Text),
    UniqueConstraint("run_id", "recipient", "kind", name="uq_sent_digests_run_recipient"),
)

job_runs = Table(
    "job_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(32), nullable=False),          # nightly | cleanup | monthly
    Column("trigger", String(16), nullable=False),      # cron | scheduler | manual
    Column("slot", String(32)),                         # the wall-clock slot it ran for, e.g. 2026-10-25T02:30
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    # running -> succeeded | failed | skipped (lock held elsewhere) | abandoned (killed)
    Column("status", String(16), nullable=False),
    Column("exit_code", Integer),
    Column("summary", Text),
    Column("alerted", Boolean, nullable=False, server_default=false()),
)
Index("ix_job_runs_job_slot", job_runs.c.job, job_runs.c.slot)

# Numbers kept on purpose by their people: in force while ended_at is NULL and until (a date,
# inclusive) has not passed. Rows are never deleted: they are the keep list's history.
keeps = Table(
    "keeps", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number_id", String(100), nullable=False),
    Column("phone_number", String(32)),
    Column("reason", Text, nullable=False),
    Column("kept_by", String(200), nullable=False),
    Column("kept_at", UTCDateTime, nullable=False),
    Column("until", Date),
    Column("ended_at", UTCDateTime),
    Column("ended_by", String(200)),
    Column("ended_reason", Text),
)
Index("ix_keeps_number", keeps.c.number_id)

# Release plans: numbers to release on a date unless kept, and the journal of applying them.
# An item's state: planned -> releasing (written before the API is asked) -> released | skipped | failed.
release_plans = Table(
    "release_plans", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("sync_run_id", Integer, ForeignKey("sync_runs.id"), nullable=False),
    Column("release_on", Date, nullable=False),
    Column("status", String(16), nullable=False),            # planned | applied | cancelled
    Column("criteria", Text, nullable=False),                # JSON: rules, min_flagged_days, max, label_pattern
    Column("applied_at", UTCDateTime),
)
release_items = Table(
    "release_items", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plan_id", Integer, ForeignKey("release_plans.id"), nullable=False),
    Column("number_id", String(100), nullable=False),
    Column("phone_number", String(32), nullable=False),
    Column("flag", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("monthly_cost", Money),
    Column("currency", String(3)),
    Column("first_flagged_at", UTCDateTime),
    Column("last_call_at", UTCDateTime),
    Column("inbound_agent_id", String(100)),
    Column("outbound_agent_id", String(100)),
    Column("state", String(16), nullable=False),
    Column("detail", Text),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("released_at", UTCDateTime),
    UniqueConstraint("plan_id", "number_id", name="uq_release_items_plan_number"),
)

# Liveness of long-running processes: the scheduler writes its row every HEARTBEAT seconds.
heartbeats = Table(
    "heartbeats", metadata,
    Column("name", String(32), primary_key=True),       # scheduler
    Column("seen_at", UTCDateTime, nullable=False),
    Column("detail", Text),                             # host and pid
)

# Invoices (the monthly review). Headers for every invoice the API lists; line items
# for the periods reviewed. An issued invoice is immutable: a change is an invoice issue.
invoices = Table(
    "invoices", metadata,
    Column("invoice_id", String(100), primary_key=True),
    Column("number", String(100)),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),       # inclusive, as the API says
    Column("issued_at", UTCDateTime),
    Column("status", String(16), nullable=False),     # draft | open | paid | void
    Column("currency", String(3), nullable=False),
    Column("total", Money, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("lines_synced_at", UTCDateTime),
    Column("lines_status", String(16)),               # the invoice's status when its lines were read
    Column("line_count", Integer),
)
Index("ix_invoices_period", invoices.c.period_start)

invoice_lines = Table(
    "invoice_lines", metadata,
    Column("invoice_id", String(100), ForeignKey("invoices.invoice_id"), primary_key=True),
    Column("line_item_id", String(100), primary_key=True),
    Column("position", Integer, nullable=False),      # order in the API's listing
    Column("type", String(32), nullable=False),
    Column("number_id", String(100)),
    Column("phone_number", String(64)),
    Column("description", Text, nullable=False),
    Column("quantity", Money),
    Column("unit_amount", Money),
    Column("amount", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("service_period_start", Date, nullable=False),
    Column("service_period_end", Date, nullable=False),  # exclusive
)

# Numbers billed on an invoice that the listings no longer show (released more than
# 400 days ago), or never showed (found = false): looked up once by id.
invoice_numbers = Table(
    "invoice_numbers", metadata,
    Column("number_id", String(100), primary_key=True),
    Column("found", Boolean, nullable=False),
    Column("phone_number", String(32)),
    Column("provider", String(16)),
    Column("is_truedy_managed", Boolean),
    Column("upfront_cost", Money),
    Column("monthly_cost", Money),
    Column("currency", String(3)),
    Column("purchased_at", UTCDateTime),
    Column("released_at", UTCDateTime),
    Column("looked_up_at", UTCDateTime, nullable=False),
)

invoice_issues = Table(
    "invoice_issues", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("invoice_id", String(100), nullable=False),
    Column("record_id", String(100), nullable=False),
    Column("field", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("found_at", UTCDateTime, nullable=False),
)
Index("ix_invoice_issues_invoice", invoice_issues.c.invoice_id)
