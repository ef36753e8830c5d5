"""keeps: numbers their people keep on purpose (never flagged while in force), with their history.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

from reconcile.store.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keeps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("number_id", sa.String(100), nullable=False),
        sa.Column("phone_number", sa.String(32)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("kept_by", sa.String(200), nullable=False),
        sa.Column("kept_at", UTCDateTime, nullable=False),
        sa.Column("until", sa.Date),
        sa.Column("ended_at", UTCDateTime),
        sa.Column("ended_by", sa.String(200)),
        sa.Column("ended_reason", sa.Text),
    )
    op.create_index("ix_keeps_number", "keeps", ["number_id"])


def downgrade() -> None:
    op.drop_index("ix_keeps_number", "keeps")
    op.drop_table("keeps")
