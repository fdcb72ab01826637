"""settlements: recon rows' credit and debit; whether a settlement's rows are complete

Revision ID: setl0c0d1b0001
Revises: att0f1a90001
Create Date: 2026-12-06 10:00:00

``settlement_items.credit`` and ``.debit``: Razorpay's own amounts of a recon row, which
sign it (``portal.settlements.checks.signed_amount``); a transfer, a chargeback or any
adjustment may be a debit, where the row's type alone called every row but a refund a
credit. Rows stored before keep NULL and are signed by their type, as they were.

``settlements.rows_complete``: the settlement's rows reach its gross, written with its
rows, so an ingest need not sum them (it summed them in SQL, a second copy of the sign).
Backfilled by the rule the rows stored so far were read by (a refund row the only debit).

Plain ADD COLUMN, no batch: SQLite need not rebuild settlements, which its items reference.
"""

from alembic import op
import sqlalchemy as sa

revision = "setl0c0d1b0001"
down_revision = "att0f1a90001"
branch_labels = None
depends_on = None

ROWS_GROSS = (
    "(SELECT COALESCE(SUM(CASE WHEN i.entity_type = 'refund' THEN -i.amount"
    " ELSE i.amount END), 0) FROM settlement_items i WHERE i.settlement_id = settlements.id)"
)


def upgrade():
    op.add_column("settlement_items", sa.Column("credit", sa.BigInteger(), nullable=True))
    op.add_column("settlement_items", sa.Column("debit", sa.BigInteger(), nullable=True))
    op.add_column(
        "settlements",
        sa.Column("rows_complete", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.execute(f"UPDATE settlements SET rows_complete = (amount + fees = {ROWS_GROSS})")


def downgrade():
    op.drop_column("settlements", "rows_complete")
    op.drop_column("settlement_items", "debit")
    op.drop_column("settlement_items", "credit")
