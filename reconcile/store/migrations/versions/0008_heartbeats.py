"""heartbeats: the scheduler's liveness, for `reconcile status` and `reconcile doctor`.

Also repairs flag_history.currency: a streak with no known saving had its missing currency
stored as the text 'NaN' on PostgreSQL (SQLite stored NULL); it is NULL now, as intended.

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op

from reconcile.store.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("seen_at", UTCDateTime, nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.execute("UPDATE flag_history SET currency = NULL WHERE currency = 'NaN'")


def downgrade() -> None:
    op.drop_table("heartbeats")
