"""Job history: every run of nightly, cleanup and monthly, however it was started.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

from reconcile.store.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("slot", sa.String(32)),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("summary", sa.Text),
        sa.Column("alerted", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_job_runs_job_slot", "job_runs", ["job", "slot"])


def downgrade() -> None:
    op.drop_table("job_runs")
