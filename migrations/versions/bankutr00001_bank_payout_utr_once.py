"""wallet adjustments: one bank transfer's UTR on one applied or waiting pay-out

Revision ID: bankutr00001
Revises: ledg0nly0001
Create Date: 2026-12-07 03:00:00

A UTR names one bank transfer, so a bank pay-out already applied or waiting refuses the
same UTR on another (``wallet.bank``). That check ran under the one wallet's lock: two
administrators recording one transfer on two patients' wallets at the same moment both
passed it (re-read finding). A partial unique index makes it the database's: the UTR of
every applied or waiting bank pay-out once; a rejected one moved nothing and frees it.

Upgrade refuses while two such pay-outs already share a UTR (which one is the transfer is
an administrator's call); downgrade drops the index.
"""

import sqlalchemy as sa
from alembic import op

revision = "bankutr00001"
down_revision = "ledg0nly0001"
branch_labels = None
depends_on = None

INDEX = "uq_wallet_adjustments_bank_utr"
COUNTED = "kind = 'bank_payout' AND status IN ('APPLIED', 'PENDING_APPROVAL')"


def upgrade():
    shared = (
        op.get_bind()
        .execute(
            sa.text(
                f"SELECT receipt_no FROM wallet_adjustments WHERE {COUNTED} "
                "GROUP BY receipt_no HAVING count(*) > 1"
            )
        )
        .scalars()
        .all()
    )
    if shared:
        raise RuntimeError(
            f"bank pay-outs share a UTR ({', '.join(shared[:10])}): reject the wrong one "
            "of each before upgrading. Not upgraded."
        )
    op.create_index(
        INDEX,
        "wallet_adjustments",
        ["receipt_no"],
        unique=True,
        postgresql_where=sa.text(COUNTED),
        sqlite_where=sa.text(COUNTED),
    )


def downgrade():
    op.drop_index(INDEX, table_name="wallet_adjustments")
