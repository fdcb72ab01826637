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
before this migration still shows on earlier documents, as it did before). Their split
keeps what the report said until now: it split each invoice's tax per clinic as a whole
(CGST half of the sum, rounded up; SGST the rest; place of supply is the clinic's state,
so never IGST), where a line's own split rounds each odd line up. So each line takes its
own half rounded up, and the paise that would add up to more than the invoice row's CGST
are taken back from its odd lines: a past month's CGST and SGST stay as reported. (From
now on an invoice row's CGST is the sum of its lines', docs/reports.md.) A reschedule fee
was its own row. Credit notes already stored theirs.
"""

from collections import defaultdict


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
    _as_reported()


def _as_reported():
    """Each past invoice row (a visit's lines at one clinic) keeps the CGST the report gave
    it: the sum's half rounded up, not the sum of the lines' halves."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, master_id, clinic_id, gst FROM bookings"
            " WHERE confirmed_at IS NOT NULL ORDER BY master_id, clinic_id, id"
        )
    ).all()
    invoices = defaultdict(list)
    for booking_id, visit_id, clinic_id, gst in rows:
        invoices[visit_id, clinic_id].append((booking_id, int(gst)))
    fixes = []
    for lines in invoices.values():
        extra = sum((g + 1) // 2 for _, g in lines) - (sum(g for _, g in lines) + 1) // 2
        for booking_id, gst in lines:
            if extra <= 0:
                break
            if gst % 2:
                cgst = gst // 2
                fixes.append({"id": booking_id, "cgst": cgst, "sgst": gst - cgst})
                extra -= 1
    if fixes:
        bind.execute(sa.text("UPDATE bookings SET cgst = :cgst, sgst = :sgst WHERE id = :id"), fixes)


def downgrade():
    for table, _issued, _gstin in reversed(BACKFILL):
        for column in reversed(_columns()):
            op.drop_column(table, column.name)
