"""payments.unapplied, and each capture of the wrong amount on a row of its own

Revision ID: pmu0a1d0001
Revises: mmb0d1sc0001
Create Date: 2026-12-06 10:12:00

``unapplied``: the row's capture went to the patient's wallet (late, or the wrong amount)
instead of paying its visit. The receipt, refunds and the console's breakup read it
(``payments.records.paid_for_nothing``) where they read the row's timeline for the events
``captured_unapplied`` / ``captured_wrong_amount``: a statement more in the capture's
transaction.

A capture of the wrong amount was written onto the pending row itself (left unpaid, with
``captured_amount``). When the patient then paid the right amount on the same order, that
capture overwrote the row's Razorpay id: the wrong one left our records (money in,
reconciliation) though its money is in the wallet, and the row that paid read as having
paid for nothing (no receipt line, no refund through it). New ones get a SUCCESSFUL row
of their own (``late_for_id`` → the order's row, which stays payable). Here every earlier
one gets that row too, its ``captured_wrong_amount`` timeline entry moving to it:

* still on the unpaid row it was written on: its id, amount and method move to the new
  row, dated by the entry; the old row is left as it would be now, never captured;
* overwritten by the capture that paid: from the entry (id, amount, time; the method is
  lost), unless a row holds its id already.

Its wallet credit stays posted against the row it was written on (the ledger is never
rewritten). ``unapplied`` is then set on every row whose timeline has either event. Run
``flask transactions rebuild`` afterwards: the console's rows of these payments (and the
breakup of the rows that paid) are written again.
"""

import sqlalchemy as sa
from alembic import op

import portal.db  # custom column types (UTCDateTime)

revision = "pmu0a1d0001"
down_revision = "mmb0d1sc0001"
branch_labels = None
depends_on = None

WRONG, UNAPPLIED = "captured_wrong_amount", "captured_unapplied"

payments = sa.table(
    "payments",
    sa.column("id", sa.Integer),
    sa.column("master_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("amount", sa.BigInteger),
    sa.column("status", sa.String),
    sa.column("razorpay_payment_id", sa.String),
    sa.column("method", sa.String),
    sa.column("captured_amount", sa.BigInteger),
    sa.column("late_for_id", sa.Integer),
    sa.column("created_at", portal.db.UTCDateTime),
    sa.column("paid_at", portal.db.UTCDateTime),
    sa.column("unapplied", sa.Boolean),
)
attempts = sa.table(
    "payment_attempts",
    sa.column("id", sa.Integer),
    sa.column("payment_id", sa.Integer),
    sa.column("at", portal.db.UTCDateTime),
    sa.column("event", sa.String),
    sa.column("razorpay_payment_id", sa.String),
    sa.column("detail", sa.JSON),
)


def _stranded(conn):
    """Captures of the wrong amount not on a row of their own: (entry id, its time, the
    Razorpay id, amount, method, the row it is on, that row's visit and kind, whether the
    row still holds it)."""
    holder = payments.alias("holder")
    p, a = payments, attempts
    on_row = sa.and_(p.c.razorpay_payment_id == a.c.razorpay_payment_id, p.c.status != "SUCCESSFUL")
    overwritten = sa.and_(
        sa.or_(
            p.c.razorpay_payment_id.is_(None), p.c.razorpay_payment_id != a.c.razorpay_payment_id
        ),
        ~sa.exists().where(holder.c.razorpay_payment_id == a.c.razorpay_payment_id),
    )
    rows = conn.execute(
        sa.select(
            a.c.id,
            a.c.at,
            a.c.razorpay_payment_id,
            a.c.detail,
            p.c.id,
            p.c.master_id,
            p.c.kind,
            p.c.razorpay_payment_id,
            p.c.method,
            p.c.captured_amount,
        )
        .join(p, p.c.id == a.c.payment_id)
        .where(
            a.c.event == WRONG, a.c.razorpay_payment_id.is_not(None), sa.or_(on_row, overwritten)
        )
        .order_by(a.c.id)
    ).all()
    for entry, at, ref, detail, row, visit, kind, row_ref, method, captured in rows:
        held = row_ref == ref
        amount = captured if held else int((detail or {}).get("amount") or 0)
        yield entry, at, ref, amount, method if held else None, row, visit, kind, held


def upgrade():
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("unapplied", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    conn = op.get_bind()
    for entry, at, ref, amount, method, row, visit, kind, held in list(_stranded(conn)):
        if not amount or amount <= 0:
            continue  # nothing to record it by (never written without its amount)
        if held:  # the id is unique: off the old row first
            conn.execute(
                sa.update(payments)
                .where(payments.c.id == row)
                .values(razorpay_payment_id=None, captured_amount=None, method=None)
            )
        new_id = conn.execute(
            sa.insert(payments)
            .values(
                master_id=visit,
                kind=kind,
                amount=amount,
                status="SUCCESSFUL",
                razorpay_payment_id=ref,
                method=method,
                captured_amount=amount,
                late_for_id=row,
                created_at=at,
                paid_at=at,
            )
            .returning(payments.c.id)
        ).scalar_one()
        conn.execute(sa.update(attempts).where(attempts.c.id == entry).values(payment_id=new_id))
    flagged = sa.select(attempts.c.payment_id).where(attempts.c.event.in_((WRONG, UNAPPLIED)))
    conn.execute(sa.update(payments).where(payments.c.id.in_(flagged)).values(unapplied=True))


def downgrade():
    # The captures keep their own rows (each is a payment Razorpay holds).
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("unapplied")
