"""reschedule fees: tax documents numbered in a series of their own per financial year

Revision ID: feedoc000001
Revises: bankutr00001
Create Date: 2026-12-08 09:00:00

A reschedule fee's tax document was numbered ``<visit invoice no>/R<reschedule id>``: a fee
charged in April for a visit invoiced in March carried the previous financial year's label,
and the numbers were not consecutive (reschedule ids count free and unpaid moves too), as
Rule 46(b) asks. Fees now take ``RF/<FY>/<serial>`` from ``fee_document_counters`` when
charged, stored in ``reschedules.document_no`` (unique: the reference search reads it).

Backfill: a document already issued never changes, so each fee charged before this
revision (its ``reschedule_fee`` ledger transaction, as the GST report reads it) keeps the
number it was issued with, ``<invoice>/R<id>``; the series starts at 000001. Downgrade
drops the column and the counters: the old code shows ``<invoice>/R<id>`` again, also for
the fees numbered in the series meanwhile.
"""

import sqlalchemy as sa
from alembic import op

revision = "feedoc000001"
down_revision = "bankutr00001"
branch_labels = None
depends_on = None

INDEX = "ix_reschedules_document_no"
ISSUED = (
    "EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.kind = 'reschedule_fee'"
    " AND t.reference_type = 'reschedule'"
    " AND t.reference_id = CAST(reschedules.id AS VARCHAR(64)))"
)
INVOICE = "SELECT visits.invoice_no FROM visits WHERE visits.id = reschedules.visit_id"


def upgrade():
    op.create_table(
        "fee_document_counters",
        sa.Column("financial_year", sa.String(length=7), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("financial_year", name=op.f("pk_fee_document_counters")),
    )
    # Plain ADD COLUMN and an index, not a batch: SQLite would rebuild reschedules.
    op.add_column("reschedules", sa.Column("document_no", sa.String(length=32), nullable=True))
    op.execute(
        f"UPDATE reschedules SET document_no = ({INVOICE}) || '/R' || CAST(id AS VARCHAR(20))"
        f" WHERE {ISSUED} AND ({INVOICE}) IS NOT NULL"
    )
    op.create_index(INDEX, "reschedules", ["document_no"], unique=True)


def downgrade():
    op.drop_index(INDEX, table_name="reschedules")
    op.drop_column("reschedules", "document_no")
    op.drop_table("fee_document_counters")
