"""Flag history: one row per streak of a number being flagged, and how it ended.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

from reconcile.store.types import Money, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flag_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("number_id", sa.String(100), nullable=False),
        sa.Column("flag", sa.String(32), nullable=False),
        sa.Column("first_flagged_at", UTCDateTime, nullable=False),
        sa.Column("first_flagged_run", sa.Integer, sa.ForeignKey("sync_runs.id"), nullable=False),
        sa.Column("last_flagged_run", sa.Integer, sa.ForeignKey("sync_runs.id"), nullable=False),
        sa.Column("monthly_savings", Money),
        sa.Column("currency", sa.String(3)),
        sa.Column("resolved_at", UTCDateTime),
        sa.Column("resolved_run", sa.Integer, sa.ForeignKey("sync_runs.id")),
        sa.Column("resolution", sa.String(32)),
    )
    op.create_index("ix_flag_history_number", "flag_history", ["number_id", "first_flagged_run"])
    op.create_index("ix_flag_history_open", "flag_history", ["resolved_run"])


def downgrade() -> None:
    op.drop_table("flag_history")
