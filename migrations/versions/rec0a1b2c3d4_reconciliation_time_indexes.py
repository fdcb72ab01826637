"""Reconciliation reads windows of payments (by capture time) and payout attempts (by
creation): index both.

Revision ID: rec0a1b2c3d4
Revises: b12c0a5e0001
"""

from alembic import op

revision = "rec0a1b2c3d4"
down_revision = "b12c0a5e0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_payments_paid_at", "payments", ["paid_at"])
    op.create_index("ix_payout_attempts_created_at", "payout_attempts", ["created_at"])


def downgrade():
    op.drop_index("ix_payout_attempts_created_at", table_name="payout_attempts")
    op.drop_index("ix_payments_paid_at", table_name="payments")
