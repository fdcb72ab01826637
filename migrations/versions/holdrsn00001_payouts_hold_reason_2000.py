"""payouts.hold_reason: 2,000 characters, as the hold form allows (docs/payouts.md)

Revision ID: holdrsn00001
Revises: payretry0001
Create Date: 2026-12-06 00:45:00

The column was 255 characters and the hold cut the reason to fit, while the form takes
2,000: the payout's admin page showed a cut reason (the audit row kept it whole). Existing
rows keep what they hold. Downgrade cuts longer reasons back to 255 first.
"""

import sqlalchemy as sa
from alembic import op

revision = "holdrsn00001"
down_revision = "payretry0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("payouts") as batch:
        batch.alter_column(
            "hold_reason",
            existing_type=sa.String(length=255),
            type_=sa.String(length=2000),
            existing_nullable=True,
        )


def downgrade():
    op.execute(
        "UPDATE payouts SET hold_reason = substr(hold_reason, 1, 255)"
        " WHERE length(hold_reason) > 255"
    )
    with op.batch_alter_table("payouts") as batch:
        batch.alter_column(
            "hold_reason",
            existing_type=sa.String(length=2000),
            type_=sa.String(length=255),
            existing_nullable=True,
        )
