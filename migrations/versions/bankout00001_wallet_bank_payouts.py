"""wallet adjustments: a pay-out by bank transfer is a kind of its own

Revision ID: bankout00001
Revises: cash0de5c0001
Create Date: 2026-12-07 10:00:00

A wallet balance the clinic's bank sent to the patient (NEFT, IMPS, RTGS, UPI) was recorded
as a manual debit, against the wallet-credit expense, so ``bank`` kept money that had left
it. Now it is a ``wallet_adjustments`` row of kind ``bank_payout`` with the transfer's UTR
in ``receipt_no``; its posting credits ``bank``. The kind check takes it, and a new check
keeps a bank pay-out a debit with its UTR.

``money_movements.reference`` widens from 40 to 64 characters: a pay-out's console row
now shows its reference, and a desk receipt may be 64 (as a desk payment's). On
PostgreSQL a wider ``varchar`` is a catalogue change (no rewrite, no index rebuilt: the
same collation and order), under a brief ACCESS EXCLUSIVE lock; on SQLite the table is
copied (batch mode), holding the one write lock while it does. No data moves on upgrade
(``flask transactions rebuild`` writes the references of pay-outs made before).

Downgrade refuses while a bank pay-out exists (the old schema cannot say what it is, and
making it a manual debit would misstate its posting); otherwise it puts the checks back
and clears the pay-outs' references (the old projector wrote none) before narrowing.
"""

import sqlalchemy as sa
from alembic import op

revision = "bankout00001"
down_revision = "cash0de5c0001"
branch_labels = None
depends_on = None

KINDS_BEFORE = "kind IN ('manual', 'cash_payout')"
KINDS = "kind IN ('manual', 'cash_payout', 'bank_payout')"


def upgrade():
    with op.batch_alter_table("wallet_adjustments") as batch:
        batch.drop_constraint(op.f("ck_wallet_adjustments_kind_known"), type_="check")
        batch.create_check_constraint(op.f("ck_wallet_adjustments_kind_known"), KINDS)
        batch.create_check_constraint(
            op.f("ck_wallet_adjustments_bank_payout_utr"),
            "kind <> 'bank_payout' OR (amount < 0 AND receipt_no IS NOT NULL)",
        )
    with op.batch_alter_table("money_movements") as batch:
        batch.alter_column(
            "reference",
            existing_type=sa.String(length=40),
            type_=sa.String(length=64),
            existing_nullable=True,
        )


def downgrade():
    bank_payouts = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM wallet_adjustments WHERE kind = 'bank_payout'")
    )
    if bank_payouts:
        raise RuntimeError(
            f"{bank_payouts} wallet pay-out(s) by bank transfer exist: the schema before "
            "bankout00001 cannot hold them. Not downgraded."
        )
    op.execute("UPDATE money_movements SET reference = NULL WHERE source = 'wallet_adjustment'")
    with op.batch_alter_table("money_movements") as batch:
        batch.alter_column(
            "reference",
            existing_type=sa.String(length=64),
            type_=sa.String(length=40),
            existing_nullable=True,
        )
    with op.batch_alter_table("wallet_adjustments") as batch:
        batch.drop_constraint(op.f("ck_wallet_adjustments_bank_payout_utr"), type_="check")
        batch.drop_constraint(op.f("ck_wallet_adjustments_kind_known"), type_="check")
        batch.create_check_constraint(op.f("ck_wallet_adjustments_kind_known"), KINDS_BEFORE)
