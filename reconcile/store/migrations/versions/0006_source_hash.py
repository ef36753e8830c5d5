"""number_versions.source_hash: a digest of the API's record as served, to skip re-parsing it.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("number_versions") as batch:
        batch.add_column(sa.Column("source_hash", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("number_versions") as batch:
        batch.drop_column("source_hash")
