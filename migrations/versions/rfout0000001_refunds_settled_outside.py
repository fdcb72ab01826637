"""refunds: a failed refund settled against a refund made on Razorpay's dashboard

Revision ID: rfout0000001
Revises: panshape0001
Create Date: 2026-12-12 10:00:00

A refund made on Razorpay's dashboard, outside the portal, gives back part of a payment
that our refunds then also ask for; Razorpay refuses the last of them and Send to wallet
refuses it too (it would give back more than was paid). Such a failed refund is now
settled (``refunds.outside``): the part the dashboard refund gave back is closed as a
processed gateway refund row naming that dashboard refund (``outside_refund_id``, never
sent by us), the rest goes to the wallet. ``refunded_outside`` keeps what Razorpay said
when Send to wallet was refused, so the refunds list offers to settle it. Both columns
are empty on existing rows: nothing was settled, and a refusal is asked again.
"""

import sqlalchemy as sa
from alembic import op

revision = "rfout0000001"
down_revision = "panshape0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("outside_refund_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("refunded_outside", sa.BigInteger(), nullable=True))
        batch.create_index(
            op.f("ix_refunds_outside_refund_id"), ["outside_refund_id"], unique=False
        )
        batch.create_check_constraint(
            op.f("ck_refunds_outside_part_processed"),
            "outside_refund_id IS NULL OR (destination = 'GATEWAY' AND status = 'PROCESSED'"
            " AND razorpay_refund_id IS NULL)",
        )


def downgrade():
    with op.batch_alter_table("refunds") as batch:
        batch.drop_constraint(op.f("ck_refunds_outside_part_processed"), type_="check")
        batch.drop_index(op.f("ix_refunds_outside_refund_id"))
        batch.drop_column("refunded_outside")
        batch.drop_column("outside_refund_id")
