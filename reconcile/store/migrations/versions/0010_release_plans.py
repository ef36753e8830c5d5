"""release_plans and release_items: plans to release flagged numbers, and the journal of applying them.

Revision ID: 0010
"""

import sqlalchemy as sa
from alembic import op

from reconcile.store.types import Money, UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_plans",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("sync_run_id", sa.Integer, sa.ForeignKey("sync_runs.id"), nullable=False),
        sa.Column("release_on", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("criteria", sa.Text, nullable=False),
        sa.Column("applied_at", UTCDateTime),
    )
    op.create_table(
        "release_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("release_plans.id"), nullable=False),
        sa.Column("number_id", sa.String(100), nullable=False),
        sa.Column("phone_number", sa.String(32), nullable=False),
        sa.Column("flag", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("monthly_cost", Money),
        sa.Column("currency", sa.String(3)),
        sa.Column("first_flagged_at", UTCDateTime),
        sa.Column("last_call_at", UTCDateTime),
        sa.Column("inbound_agent_id", sa.String(100)),
        sa.Column("outbound_agent_id", sa.String(100)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("released_at", UTCDateTime),
        sa.UniqueConstraint("plan_id", "number_id", name="uq_release_items_plan_number"),
    )


def downgrade() -> None:
    op.drop_table("release_items")
    op.drop_table("release_plans")
