"""Payments of a visit and their attempt timeline. Amounts are integer paise."""

from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import UTCDateTime, utcnow
from portal.domain.states import PaymentStatus
from portal.extensions import db

ORDER, LINK, DESK, WALLET = "ORDER", "LINK", "DESK", "WALLET"
KINDS = (ORDER, LINK, DESK, WALLET)
STATUSES = tuple(PaymentStatus)


class AttemptNote(StrEnum):
    """What a timeline entry records when the event moves no payment status."""

    AUTHORIZED = "AUTHORIZED"  # authorized at the gateway; the capture confirms
    REJECTED = "REJECTED"  # a callback whose signature did not verify
    MISMATCH = "MISMATCH"  # captured, but not the amount asked for


def _in(column, values):
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Payment(db.Model):
    """One way a visit is (to be) paid: a Razorpay order (patient checkout), a payment link
    (admin), a desk payment (cash/card at the clinic) or the wallet part of a checkout.

    A gateway payment captured after its payment row had expired, or of another amount
    than its row asks, is recorded as a new SUCCESSFUL row (``late_for_id``), never by
    reviving a final status nor on the row still to be paid."""

    __tablename__ = "payments"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint(_in("kind", KINDS), name="kind_known"),
        sa.CheckConstraint(_in("status", STATUSES), name="status_known"),
        sa.CheckConstraint("kind <> 'DESK' OR receipt_no IS NOT NULL", name="desk_receipt"),
        sa.Index("ix_payments_status_expires", "status", "expires_at"),
        # The dashboard's money in by day: an index-only scan on PostgreSQL.
        sa.Index(
            "ix_payments_paid_at",
            "paid_at",
            postgresql_include=["status", "kind", "amount", "captured_amount"],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    master_id: Mapped[int] = mapped_column(
        sa.ForeignKey("visits.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(8))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(12), default=PaymentStatus.PENDING, index=True)
    razorpay_order_id: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    razorpay_payment_id: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    razorpay_link_id: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    link_url: Mapped[str | None] = mapped_column(sa.String(500))
    receipt_no: Mapped[str | None] = mapped_column(sa.String(64))
    method: Mapped[str | None] = mapped_column(sa.String(32))
    captured_amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    late_for_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payments.id"))
    # Its capture paid for nothing (late, or the wrong amount): the money went to the
    # patient's wallet. Set when that is decided (``booking.payment_events._unapplied``),
    # so the receipt, refunds and the console's breakup know it without reading the
    # timeline (``records.paid_for_nothing``).
    unapplied: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    expires_at: Mapped[object | None] = mapped_column(UTCDateTime)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    # indexed: reconciliation reads a window of captures
    # indexed by ix_payments_paid_at above (covering: the dashboard and reconciliation)
    paid_at: Mapped[object | None] = mapped_column(UTCDateTime)

    visit = relationship("MasterBooking", back_populates="payments")
    attempts = relationship(
        "PaymentAttempt",
        back_populates="payment",
        order_by="(PaymentAttempt.at, PaymentAttempt.id)",
        cascade="all, delete-orphan",
    )

    @property
    def master(self):
        return self.visit

    @property
    def failed_attempts(self):
        return len(
            {
                a.razorpay_payment_id or a.id
                for a in self.attempts
                if a.status == PaymentStatus.FAILED
            }
        )

    @property
    def attempt_count(self):
        """Distinct gateway payment attempts made against this order/link."""
        return len({a.razorpay_payment_id for a in self.attempts if a.razorpay_payment_id})

    def owner_ids(self):
        return self.visit.owner_ids()

    def __repr__(self):
        return f"<Payment {self.id} {self.kind} {self.status} {self.amount}>"


class PaymentAttempt(db.Model):
    """The timeline of a payment: created, each gateway event, callbacks, expiry.

    ``status`` is what the event said (a ``PaymentStatus``, or an ``AttemptNote`` for an
    event that moves nothing): a line of the log, not a state."""

    __tablename__ = "payment_attempts"
    # The dashboard counts failed attempts by day.
    __table_args__ = (sa.Index("ix_payment_attempts_status_at", "status", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    event: Mapped[str] = mapped_column(sa.String(48))
    status: Mapped[str] = mapped_column(sa.String(12))
    razorpay_payment_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    detail: Mapped[dict | None] = mapped_column(sa.JSON)

    payment = relationship("Payment", back_populates="attempts")
