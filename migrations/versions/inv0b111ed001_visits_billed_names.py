"""visits: the names their invoice was issued to

Revision ID: inv0b111ed001
Revises: pay0a77e3f003
Create Date: 2026-12-05 11:00:00

``visits.billed_to_name`` (the account holder billed) and ``visits.billed_for_name`` (the
person the visit is for), NULL until the invoice number is issued and written with it
(``booking.lifecycle.confirm``): the receipt reads them, so renaming a dependent or the
account holder no longer changes an invoice already issued (docs/reports.md).

Backfill: the names an invoice was issued to were never recorded, so the visits invoiced
before this migration take today's names (the holder's, and the dependent's or else the
holder's): a rename made before it still shows on their invoices, as it did before.
"""

from alembic import op
import sqlalchemy as sa

revision = "inv0b111ed001"
down_revision = "pay0a77e3f003"
branch_labels = None
depends_on = None

HOLDER = "(SELECT name FROM users WHERE users.id = visits.patient_id)"
DEPENDENT = "(SELECT name FROM dependents WHERE dependents.id = visits.dependent_id)"


def upgrade():
    # Plain ADD COLUMN (nullable), no batch: SQLite need not rebuild visits, which other
    # tables reference.
    op.add_column("visits", sa.Column("billed_to_name", sa.String(length=120), nullable=True))
    op.add_column("visits", sa.Column("billed_for_name", sa.String(length=120), nullable=True))
    op.execute(
        f"UPDATE visits SET billed_to_name = {HOLDER},"
        f" billed_for_name = COALESCE({DEPENDENT}, {HOLDER})"
        " WHERE invoice_no IS NOT NULL"
    )


def downgrade():
    op.drop_column("visits", "billed_for_name")
    op.drop_column("visits", "billed_to_name")
