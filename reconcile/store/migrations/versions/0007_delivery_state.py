"""sent_digests.status and .refused: a message is logged before it is handed to the server.

`sending` while (or if the process died while) the server had it, `sent` once accepted,
`refused` with the addresses the server would not take. Earlier rows were all sent.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sent_digests") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="sent"))
        batch.add_column(sa.Column("refused", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("sent_digests") as batch:
        batch.drop_column("refused")
        batch.drop_column("status")
