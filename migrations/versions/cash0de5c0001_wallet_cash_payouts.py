"""wallet adjustments: a cash pay-out at the desk is a kind of its own

Revision ID: cash0de5c0001
Revises: emkey0000001
Create Date: 2026-12-06 23:00:00

Review finding: a wallet balance handed to the patient in cash at the desk was recorded as
a manual debit, against the wallet-credit expense, so ``cash_desk`` kept the cash that had
left it. Now such a pay-out is a ``wallet_adjustments`` row of kind ``cash_payout`` (the
others ``manual``, the default every existing row takes) with the desk receipt's number;
its posting credits ``cash_desk``. The checks keep a cash pay-out a debit with a receipt;
the index serves the dashboard's daily cash paid out. No data moves.
"""

import sqlalchemy as sa
from alembic import op

revision = "cash0de5c0001"
down_revision = "emkey0000001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("wallet_adjustments") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="manual")
        )
        batch.add_column(sa.Column("receipt_no", sa.String(length=64), nullable=True))
        batch.create_check_constraint(
            op.f("ck_wallet_adjustments_kind_known"), "kind IN ('manual', 'cash_payout')"
        )
        batch.create_check_constraint(
            op.f("ck_wallet_adjustments_cash_payout_receipt"),
            "kind <> 'cash_payout' OR (amount < 0 AND receipt_no IS NOT NULL)",
        )
        batch.create_index(
            "ix_wallet_adjustments_kind_applied", ["kind", "applied_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("wallet_adjustments") as batch:
        batch.drop_index("ix_wallet_adjustments_kind_applied")
        batch.drop_constraint(op.f("ck_wallet_adjustments_cash_payout_receipt"), type_="check")
        batch.drop_constraint(op.f("ck_wallet_adjustments_kind_known"), type_="check")
        batch.drop_column("receipt_no")
        batch.drop_column("kind")
