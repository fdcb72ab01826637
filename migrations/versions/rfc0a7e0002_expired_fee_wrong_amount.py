"""reschedule fee captures: a wrong amount paid after its request expired gets its row too

Revision ID: rfc0a7e0002
Revises: pmu0a1d0001
Create Date: 2026-12-05 15:15:00

A payment on a reschedule fee's order that came after the request expired was recorded on
the request's row (``reschedules.razorpay_payment_id``) whatever its amount, and the row's
readers (the console's and the dashboard's money in, reconciliation, the settlements'
overdue check) count the fee's total: a ₹1 capture read as the whole fee. Such a payment
now gets a ``reschedule_fee_captures`` row with what was captured, as every other wrong
amount does (``reschedule_payment._unapplied``).

Backfill: each expired request whose recorded payment's wallet credit
(``reschedule_unapplied:<reschedule>:<payment>``) differs from its total gets that row,
from the posting, and no longer records the payment. Downgrade leaves the rows: the code
before this revision reads them as well. Run ``flask transactions rebuild`` afterwards.
"""

from alembic import op
import sqlalchemy as sa


revision = "rfc0a7e0002"
down_revision = "pmu0a1d0001"
branch_labels = None
depends_on = None

PREFIX = "reschedule_unapplied:"
# The wallet credit of the payment an expired request records, and its amount (the
# posting's positive side, what Razorpay captured).
_CREDIT = (
    " FROM ledger_transactions t"
    " JOIN reschedules r ON t.reference_id = CAST(r.id AS VARCHAR(20))"
    " WHERE t.kind = 'reschedule_unapplied' AND t.reference_type = 'reschedule'"
    "  AND r.status = 'EXPIRED' AND r.razorpay_payment_id IS NOT NULL"
    "  AND t.idempotency_key = :prefix || t.reference_id || ':' || r.razorpay_payment_id"
    "  AND (SELECT SUM(e.amount) FROM ledger_entries e"
    "   WHERE e.transaction_id = t.id AND e.amount > 0) <> r.total"
)


def upgrade():
    op.execute(
        sa.text(
            "INSERT INTO reschedule_fee_captures"
            " (reschedule_id, razorpay_payment_id, amount, captured_at)"
            " SELECT r.id, r.razorpay_payment_id,"
            "  (SELECT SUM(e.amount) FROM ledger_entries e"
            "   WHERE e.transaction_id = t.id AND e.amount > 0),"
            "  t.created_at" + _CREDIT + " ORDER BY t.id"
        ).bindparams(prefix=PREFIX)
    )
    op.execute(
        sa.text(
            "UPDATE reschedules SET razorpay_payment_id = NULL"
            " WHERE status = 'EXPIRED' AND razorpay_payment_id IN"
            " (SELECT c.razorpay_payment_id FROM reschedule_fee_captures c"
            "  WHERE c.reschedule_id = reschedules.id)"
        )
    )


def downgrade():
    pass  # the rows stay: the revision before reads them too
