"""Invoices, their line items, numbers looked up for them, and invoice data issues.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

from reconcile.store.types import Money, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.String(100), primary_key=True),
        sa.Column("number", sa.String(100)),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("issued_at", UTCDateTime),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total", Money, nullable=False),
        sa.Column("first_seen_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("lines_synced_at", UTCDateTime),
        sa.Column("lines_status", sa.String(16)),
        sa.Column("line_count", sa.Integer),
    )
    op.create_index("ix_invoices_period", "invoices", ["period_start"])
    op.create_table(
        "invoice_lines",
        sa.Column("invoice_id", sa.String(100), sa.ForeignKey("invoices.invoice_id"), primary_key=True),
        sa.Column("line_item_id", sa.String(100), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("number_id", sa.String(100)),
        sa.Column("phone_number", sa.String(64)),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("quantity", Money),
        sa.Column("unit_amount", Money),
        sa.Column("amount", Money, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("service_period_start", sa.Date, nullable=False),
        sa.Column("service_period_end", sa.Date, nullable=False),
    )
    op.create_table(
        "invoice_numbers",
        sa.Column("number_id", sa.String(100), primary_key=True),
        sa.Column("found", sa.Boolean, nullable=False),
        sa.Column("phone_number", sa.String(32)),
        sa.Column("provider", sa.String(16)),
        sa.Column("is_truedy_managed", sa.Boolean),
        sa.Column("upfront_cost", Money),
        sa.Column("monthly_cost", Money),
        sa.Column("currency", sa.String(3)),
        sa.Column("purchased_at", UTCDateTime),
        sa.Column("released_at", UTCDateTime),
        sa.Column("looked_up_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "invoice_issues",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("invoice_id", sa.String(100), nullable=False),
        sa.Column("record_id", sa.String(100), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("found_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_invoice_issues_invoice", "invoice_issues", ["invoice_id"])


def downgrade() -> None:
    op.drop_table("invoice_issues")
    op.drop_table("invoice_numbers")
    op.drop_table("invoice_lines")
    op.drop_table("invoices")
