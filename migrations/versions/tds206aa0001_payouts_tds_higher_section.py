"""payouts: why a payout's TDS rate is above the rule's (section 206AA, no PAN on file)

Revision ID: tds206aa0001
Revises: rfout0000001
Create Date: 2026-12-12 10:00:00

Income-tax Act section 206AA: a payee liable to TDS who has not furnished a PAN is
deducted at the higher of the rate in force and 20% (the policy's "TDS rate without a
PAN", kept per financial year with the 194J rule). A payout made while its provider had no
PAN on file, past the threshold, deducts at that rate: ``payouts.tds_rate_bps`` holds the
rate applied (the year's replay takes the payout under it), and the new
``payouts.tds_higher_section`` says why: "206AA", else NULL (the rule's own rate). The TDS
report marks those rows (docs/payouts.md, "TDS without a PAN").

No backfill: every payout made before this revision was deducted at the rule's own rate
(the portal deducted 10% with or without a PAN), which NULL says; nothing already deducted
changes. Locks (PostgreSQL): ADD COLUMN of a nullable column without a default and a CHECK
that NULL passes: a moment's ACCESS EXCLUSIVE lock on payouts and one scan for the CHECK,
no table rewrite. On SQLite the batch rebuilds the table under the one write lock.
"""

import sqlalchemy as sa
from alembic import op

revision = "tds206aa0001"
down_revision = "rfout0000001"
branch_labels = None
depends_on = None

CHECK = "tds_higher_section IS NULL OR tds_higher_section = '206AA'"


def upgrade():
    with op.batch_alter_table("payouts") as batch:
        batch.add_column(sa.Column("tds_higher_section", sa.String(8), nullable=True))
        batch.create_check_constraint(op.f("ck_payouts_tds_higher_section_known"), CHECK)


def downgrade():
    with op.batch_alter_table("payouts") as batch:
        batch.drop_constraint(op.f("ck_payouts_tds_higher_section_known"), type_="check")
        batch.drop_column("tds_higher_section")
