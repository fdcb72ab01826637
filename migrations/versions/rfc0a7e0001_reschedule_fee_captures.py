"""reschedule fee captures: a record of each fee payment its reschedule does not record

Revision ID: rfc0a7e0001
Revises: wkhours00001
Create Date: 2026-12-05 13:26:44

A reschedule fee captured for the wrong amount, a second payment on a fee's order, or one
that came after the request ended once its row recorded another, went to the patient's
wallet (ledger ``reschedule_unapplied:<reschedule>:<payment>``) with no row recording the
payment: the transactions console, the dashboard's money in and reconciliation left it
out. ``reschedule_fee_captures`` records it (``booking.models.FeeCapture``).

Backfill: every such wallet credit already posted gets its row, from the posting (the
payment id in its key, its amount, its time); a credit of the payment its reschedule
records (paid after the request ended) is that row's and gets none. Run ``flask
transactions rebuild`` afterwards to give them their console rows.
"""

from alembic import op
import sqlalchemy as sa

import portal.db  # custom column types (UTCDateTime)


revision = "rfc0a7e0001"
down_revision = "wkhours00001"
branch_labels = None
depends_on = None

PREFIX = "reschedule_unapplied:"


def upgrade():
    op.create_table(
        "reschedule_fee_captures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reschedule_id", sa.Integer(), nullable=False),
        sa.Column("razorpay_payment_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("captured_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_reschedule_fee_captures_amount_positive")),
        sa.ForeignKeyConstraint(
            ["reschedule_id"],
            ["reschedules.id"],
            name=op.f("fk_reschedule_fee_captures_reschedule_id_reschedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reschedule_fee_captures")),
        sa.UniqueConstraint(
            "razorpay_payment_id", name=op.f("uq_reschedule_fee_captures_razorpay_payment_id")
        ),
    )
    with op.batch_alter_table("reschedule_fee_captures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reschedule_fee_captures_captured_at"), ["captured_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reschedule_fee_captures_reschedule_id"), ["reschedule_id"], unique=False
        )
    # The key is reschedule_unapplied:<reschedule id>:<payment id>; the amount is what the
    # posting debited to gateway clearing (its positive side).
    op.execute(
        sa.text(
            "INSERT INTO reschedule_fee_captures"
            " (reschedule_id, razorpay_payment_id, amount, captured_at)"
            " SELECT r.id,"
            "  substr(t.idempotency_key, length(:prefix) + length(t.reference_id) + 2),"
            "  (SELECT SUM(e.amount) FROM ledger_entries e"
            "   WHERE e.transaction_id = t.id AND e.amount > 0),"
            "  t.created_at"
            " FROM ledger_transactions t"
            " JOIN reschedules r ON t.reference_id = CAST(r.id AS VARCHAR(20))"
            " WHERE t.kind = 'reschedule_unapplied' AND t.reference_type = 'reschedule'"
            "  AND t.idempotency_key LIKE :prefix || t.reference_id || ':%'"
            "  AND (r.razorpay_payment_id IS NULL OR t.idempotency_key"
            "   <> :prefix || t.reference_id || ':' || r.razorpay_payment_id)"
            " ORDER BY t.id"
        ).bindparams(prefix=PREFIX)
    )


def downgrade():
    with op.batch_alter_table("reschedule_fee_captures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reschedule_fee_captures_reschedule_id"))
        batch_op.drop_index(batch_op.f("ix_reschedule_fee_captures_captured_at"))

    op.drop_table("reschedule_fee_captures")
