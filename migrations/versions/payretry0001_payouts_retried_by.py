"""payouts.retried_by_payout_id: an admin's retry of a returned payout, once (docs/payouts.md)

Revision ID: payretry0001
Revises: acc10sed0002
Create Date: 2026-12-05 22:00:00

The MANUAL payout an admin's retry made of a payout given back to the payable; a second
retry of it is refused (a double click paid twice). Unique: a payout replaces at most one.
Existing rows: NULL (a returned payout retried before this is not linked).
"""

import sqlalchemy as sa
from alembic import op

revision = "payretry0001"
down_revision = "acc10sed0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("payouts") as batch:
        batch.add_column(sa.Column("retried_by_payout_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_payouts_retried_by_payout_id_payouts", "payouts", ["retried_by_payout_id"], ["id"]
        )
        batch.create_unique_constraint(
            "uq_payouts_retried_by_payout_id", ["retried_by_payout_id"]
        )


def downgrade():
    with op.batch_alter_table("payouts") as batch:
        batch.drop_constraint("uq_payouts_retried_by_payout_id", type_="unique")
        batch.drop_constraint("fk_payouts_retried_by_payout_id_payouts", type_="foreignkey")
        batch.drop_column("retried_by_payout_id")
