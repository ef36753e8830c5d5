"""number_last_call: each number's newest call, kept by every sync (the nightly reads it, not every call).

Revision ID: 0012
"""

import sqlalchemy as sa
from alembic import op

from reconcile.store.types import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "number_last_call",
        sa.Column("number_id", sa.String(100), primary_key=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
    )
    # the calls already stored: one pass over the covering index on number and start
    op.execute("INSERT INTO number_last_call (number_id, started_at) SELECT number_id, max(started_at) FROM calls "
               "WHERE number_id IS NOT NULL GROUP BY number_id")


def downgrade() -> None:
    op.drop_table("number_last_call")
