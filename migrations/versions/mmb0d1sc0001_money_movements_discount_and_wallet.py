"""money movements: discount and wallet, so a payment's price breakup adds up to it

Revision ID: mmb0d1sc0001
Revises: rfc0a7e0001
Create Date: 2026-12-05 13:36:21

A payment's console row carried its whole visit's breakup (fee, platform fee, GST)
whatever the payment paid: a payment beside a wallet part or a coupon, or a capture that
confirmed nothing, read a breakup that did not add up to its amount, and a column of GST
counted an invoice's GST more than once. Now only the payment that paid the invoice
carries it, less ``discount`` and ``wallet`` (new), so fee + platform fee + GST − discount
− wallet = amount (``booking.receipts.breakup_of``).

The payments' rows written before keep no breakup (cleared here: it may be wrong); run
``flask transactions rebuild`` afterwards to give the paying rows theirs.
"""

from alembic import op
import sqlalchemy as sa


revision = "mmb0d1sc0001"
down_revision = "rfc0a7e0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("money_movements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("discount", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("wallet", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE money_movements SET fee = NULL, platform_fee = NULL, gst = NULL"
        " WHERE source = 'payment' AND fee IS NOT NULL"
    )


def downgrade():
    with op.batch_alter_table("money_movements", schema=None) as batch_op:
        batch_op.drop_column("wallet")
        batch_op.drop_column("discount")
