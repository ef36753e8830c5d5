"""The sent-mail log: one row per digest sent, so a digest is never sent twice.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

from reconcile.store.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sent_digests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("sync_runs.id"), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("numbers", sa.Integer, nullable=False),
        sa.Column("number_ids", sa.Text, nullable=False),
        sa.UniqueConstraint("run_id", "recipient", "kind", name="uq_sent_digests_run_recipient"),
    )


def downgrade() -> None:
    op.drop_table("sent_digests")
