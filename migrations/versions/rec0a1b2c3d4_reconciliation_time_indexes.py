"""Reconciliation reads windows of payments (by capture time) and payout attempts (by
creation): index both. Cases keep their two sides in short (``ours_key``, ``theirs_key``)
so a run knows what changed without reading JSON.

Revision ID: rec0a1b2c3d4
Revises: ledgerx00001
"""

import sqlalchemy as sa
from alembic import op

revision = "rec0a1b2c3d4"
down_revision = "ops0a1b2c3d4"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_payments_paid_at", "payments", ["paid_at"])
    op.create_index("ix_payout_attempts_created_at", "payout_attempts", ["created_at"])
    op.add_column("recon_cases", sa.Column("ours_key", sa.String(length=96), nullable=True))
    op.add_column("recon_cases", sa.Column("theirs_key", sa.String(length=96), nullable=True))


def downgrade():
    op.drop_column("recon_cases", "theirs_key")
    op.drop_column("recon_cases", "ours_key")
    op.drop_index("ix_payout_attempts_created_at", table_name="payout_attempts")
    op.drop_index("ix_payments_paid_at", table_name="payments")
