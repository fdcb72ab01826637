"""tax documents as issued: the GSTIN and CGST/SGST/IGST of invoice lines and reschedule fees

Revision ID: gst0a5155ued1
Revises: po11c1e50002
Create Date: 2026-12-05 10:00:00

An invoice line (``bookings``, at its visit's confirmation) and a reschedule fee
(``reschedules``, when charged) keep the clinic's GSTIN of that moment and their tax split
(``invoice_gstin``, ``cgst``, ``sgst``, ``igst``; NULL until issued), so a later edit of the
clinic's GSTIN no longer moves past documents in the GST report or on the receipt
(docs/reports.md).

Backfill: the GSTIN a document was issued under was never recorded, so the existing
invoiced lines and charged fees can only take the clinic's GSTIN of today (a GSTIN edited
before this migration still shows on earlier documents, as it did before). Their split is
the rule the report applied until now, per line: CGST half rounded up, SGST the rest
(place of supply is the clinic's state, so never IGST). Credit notes already stored theirs.
"""

from alembic import op
import sqlalchemy as sa

revision = "gst0a5155ued1"
down_revision = "po11c1e50002"
branch_labels = None
depends_on = None

# (table, which rows are issued documents, how the row reaches its clinic)
BACKFILL = (
    (
        "bookings",
        "bookings.confirmed_at IS NOT NULL",
        "SELECT gstin FROM clinics WHERE clinics.id = bookings.clinic_id",
    ),
    (
        "reschedules",
        "EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.kind = 'reschedule_fee'"
        " AND t.reference_type = 'reschedule'"
        " AND t.reference_id = CAST(reschedules.id AS VARCHAR(64)))",
        "SELECT clinics.gstin FROM clinics JOIN bookings ON bookings.clinic_id = clinics.id"
        " WHERE bookings.id = reschedules.booking_id",
    ),
)


def _columns():
    return (
        sa.Column("invoice_gstin", sa.String(length=15), nullable=True),
        sa.Column("cgst", sa.BigInteger(), nullable=True),
        sa.Column("sgst", sa.BigInteger(), nullable=True),
        sa.Column("igst", sa.BigInteger(), nullable=True),
    )


# Plain ADD/DROP COLUMN, not a batch: SQLite would rebuild bookings, which other tables
# reference, and with foreign keys on it refuses to drop the old table once it has rows.
# So no CHECK that the split adds up (adding one needs that rebuild): one function
# computes it (portal.domain.gst.split_for_gstin).
def upgrade():
    for table, issued, gstin in BACKFILL:
        for column in _columns():
            op.add_column(table, column)
        # gst >= 0 (a CHECK), so integer (gst + 1) / 2 is half of it rounded half-up.
        op.execute(
            f"UPDATE {table} SET invoice_gstin = ({gstin}), cgst = (gst + 1) / 2,"
            f" sgst = gst - (gst + 1) / 2, igst = 0 WHERE {issued}"
        )


def downgrade():
    for table, _issued, _gstin in reversed(BACKFILL):
        for column in reversed(_columns()):
            op.drop_column(table, column.name)
