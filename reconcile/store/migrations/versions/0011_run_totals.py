"""run_totals: each run's trend figures (numbers, monthly cost, flagged savings per currency), kept once.

Revision ID: 0011
"""

import sqlalchemy as sa
from alembic import op

from reconcile.store.types import Money

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # filled by the nightly review as runs are evaluated (the runs before this are worked out then)
    op.create_table(
        "run_totals",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("sync_runs.id"), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("numbers", sa.Integer, nullable=False),
        sa.Column("monthly_cost", Money),
        sa.Column("waste", Money),
    )


def downgrade() -> None:
    op.drop_table("run_totals")
