"""refunds.failures: each time a refund fails for a person is alerted

Revision ID: rff0a1e0001
Revises: ics0seq00001
Create Date: 2026-12-05 17:00:00

A refund found at Razorpay after it was given up (PENDING again) or retried by an admin may
fail again; ``alerted`` was reset for that, but the alert's outbox key and its notices'
dedupe key were the refund's own, so the second failure alerted no one. The count of
failures now keys each episode. Existing rows start at 0: their next failure is the first
counted, and its key differs from the one their alert took.
"""

import sqlalchemy as sa
from alembic import op

revision = "rff0a1e0001"
down_revision = "ics0seq00001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("failures", sa.Integer(), nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("refunds") as batch:
        batch.drop_column("failures")
