"""The first schema: sync runs, number and agent versions, calls, sync state, data issues.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from reconcile.store.types import Money, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("as_of", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("counts", sa.Text),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "number_versions",
        sa.Column("version_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("number_id", sa.String(100), nullable=False),
        sa.Column("phone_number", sa.String(32), nullable=False),
        sa.Column("label", sa.Text),
        sa.Column("country_code", sa.String(2), nullable=False),
        sa.Column("phone_number_type", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("is_truedy_managed", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("upfront_cost", Money),
        sa.Column("monthly_cost", Money),
        sa.Column("currency", sa.String(3)),
        sa.Column("purchased_at", UTCDateTime, nullable=False),
        sa.Column("released_at", UTCDateTime),
        sa.Column("inbound_agent_id", sa.String(100)),
        sa.Column("inbound_assigned_at", UTCDateTime),
        sa.Column("outbound_agent_id", sa.String(100)),
        sa.Column("outbound_assigned_at", UTCDateTime),
        sa.Column("row_hash", sa.String(32), nullable=False),
        sa.Column("valid_from_run", sa.Integer, sa.ForeignKey("sync_runs.id"), nullable=False),
        sa.Column("valid_to_run", sa.Integer, sa.ForeignKey("sync_runs.id")),
    )
    op.create_index("ix_number_versions_number", "number_versions", ["number_id", "valid_from_run"])
    op.create_index("ix_number_versions_open", "number_versions", ["valid_to_run"])
    op.create_table(
        "agent_versions",
        sa.Column("version_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agent_id", sa.String(100), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("archived_at", UTCDateTime),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("row_hash", sa.String(32), nullable=False),
        sa.Column("valid_from_run", sa.Integer, sa.ForeignKey("sync_runs.id"), nullable=False),
        sa.Column("valid_to_run", sa.Integer, sa.ForeignKey("sync_runs.id")),
    )
    op.create_index("ix_agent_versions_agent", "agent_versions", ["agent_id", "valid_from_run"])
    op.create_index("ix_agent_versions_open", "agent_versions", ["valid_to_run"])
    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(100), primary_key=True),
        sa.Column("agent_id", sa.String(100), nullable=False),
        sa.Column("number_id", sa.String(100)),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("from_number", sa.String(32)),
        sa.Column("to_number", sa.String(32)),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=False),
        sa.Column("duration_seconds", sa.Integer, nullable=False),
        sa.Column("cost_amount", Money, nullable=False),
        sa.Column("cost_currency", sa.String(3), nullable=False),
        sa.Column("sync_run_id", sa.Integer, sa.ForeignKey("sync_runs.id"), nullable=False),
    )
    op.create_index("ix_calls_number_started", "calls", ["number_id", "direction", "started_at"])
    op.create_index("ix_calls_started", "calls", ["started_at"])
    op.create_table(
        "sync_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("sync_run_id", sa.Integer, sa.ForeignKey("sync_runs.id"), nullable=False),
    )
    op.create_table(
        "data_issues",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sync_run_id", sa.Integer, sa.ForeignKey("sync_runs.id"), nullable=False),
        sa.Column("record_type", sa.String(32), nullable=False),
        sa.Column("record_id", sa.String(100), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_data_issues_run", "data_issues", ["sync_run_id"])


def downgrade() -> None:
    for table in ("data_issues", "sync_state", "calls", "agent_versions", "number_versions", "sync_runs"):
        op.drop_table(table)
