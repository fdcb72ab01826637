"""Cancellations of individual bookings, the refunds they cause, and the second-admin
approvals of refund overrides. Money columns are integer paise.

Database guarantees (besides the service's locks and the state machines):

* ``cancellations.booking_id`` is UNIQUE: an item is cancelled at most once;
* ``refunds.idempotency_key`` is UNIQUE (sent as ``X-Refund-Idempotency``, the same on
  every retry of that refund), ``refunds.razorpay_refund_id`` is UNIQUE;
* ``refunds.amount > 0``; destination ``WALLET`` | ``GATEWAY``; a gateway refund names
  the Razorpay payment it refunds; a part settled against a refund made on Razorpay's
  dashboard (``outside_refund_id``) is a gateway refund, processed, never sent by us;
* an override approval is decided by a different admin than the one who asked
  (``decided_by_id <> requested_by_id``), and at most one approval per booking is pending
  (a partial unique index).
"""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import UTCDateTime, utcnow
from portal.domain.states import ApprovalStatus, RefundStatus
from portal.extensions import db

WALLET, GATEWAY = "WALLET", "GATEWAY"
DESTINATIONS = (WALLET, GATEWAY)
REFUND_STATUSES = tuple(RefundStatus)

# Who cancelled (the domain's actors): the patient online, an admin for the patient, an
# admin for the clinic's own reasons (100 %, no penalty), the provider (100 % + penalty).
ACTOR_KINDS = ("patient", "admin", "clinic", "provider")

APPROVAL_STATUSES = tuple(ApprovalStatus)


def _in(column, values):
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Cancellation(db.Model):
    """One cancelled individual booking: who, why, under which rule, and the money."""

    __tablename__ = "cancellations"
    __table_args__ = (
        sa.CheckConstraint(_in("actor_kind", ACTOR_KINDS), name="actor_kind_known"),
        sa.CheckConstraint(
            "paid >= 0 AND calculated >= 0 AND refund >= 0 AND penalty >= 0",
            name="amounts_non_negative",
        ),
        sa.CheckConstraint("refund <= paid", name="refund_within_paid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        sa.ForeignKey("bookings.id", ondelete="CASCADE"), unique=True
    )
    visit_id: Mapped[int] = mapped_column(
        sa.ForeignKey("visits.id", ondelete="CASCADE"), index=True
    )
    actor_kind: Mapped[str] = mapped_column(sa.String(10))
    rule: Mapped[str] = mapped_column(sa.String(32))
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    notice_minutes: Mapped[int] = mapped_column()  # time until the start, when cancelled
    paid: Mapped[int] = mapped_column(sa.BigInteger)
    calculated: Mapped[int] = mapped_column(sa.BigInteger)  # what the table gives
    refund: Mapped[int] = mapped_column(sa.BigInteger)  # refunded at cancellation
    penalty: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # A provider's cancellation: the provider it was for (who cancelled, or on whose behalf
    # the clinic did), charged ``penalty`` if any; None for the others.
    penalty_provider_id: Mapped[int | None] = mapped_column(sa.ForeignKey("providers.id"))
    prefer_wallet: Mapped[bool] = mapped_column(default=False)
    gst_reversed: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, index=True)

    booking = relationship("IndividualBooking")
    visit = relationship("MasterBooking")
    requested_by = relationship("User")
    penalty_provider = relationship("Provider")
    refunds = relationship("Refund", back_populates="cancellation", order_by="Refund.id")

    def owner_ids(self):
        return self.booking.owner_ids()


class Refund(db.Model):
    """Money going back to a patient for one item: to the wallet (instant, PROCESSED at
    once) or through Razorpay (PENDING until ``refund.processed`` / ``refund.failed``)."""

    __tablename__ = "refunds"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint(_in("destination", DESTINATIONS), name="destination_known"),
        sa.CheckConstraint(_in("status", REFUND_STATUSES), name="status_known"),
        sa.CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        sa.CheckConstraint(
            "destination = 'GATEWAY' OR razorpay_refund_id IS NULL", name="wallet_has_no_gateway_id"
        ),
        sa.CheckConstraint(
            "destination = 'WALLET' OR razorpay_payment_id IS NOT NULL",
            name="gateway_names_payment",
        ),
        sa.CheckConstraint(
            "outside_refund_id IS NULL OR (destination = 'GATEWAY' AND status = 'PROCESSED'"
            " AND razorpay_refund_id IS NULL)",
            name="outside_part_processed",
        ),
        sa.Index("ix_refunds_status_retry", "status", "next_retry_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        sa.ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    visit_id: Mapped[int] = mapped_column(
        sa.ForeignKey("visits.id", ondelete="CASCADE"), index=True
    )
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    cancellation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("cancellations.id", ondelete="CASCADE"), index=True
    )
    approval_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("refund_approvals.id", ondelete="SET NULL")
    )
    # Set when the money is a reschedule fee given back (not part of the item's paid amount).
    reschedule_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("reschedules.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    destination: Mapped[str] = mapped_column(sa.String(8))
    payment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payments.id"))
    razorpay_payment_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    razorpay_refund_id: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    status: Mapped[str] = mapped_column(sa.String(10), default=RefundStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    # When its first and its latest create request went to Razorpay (one key for all of
    # them; None until sent): Razorpay made it at one of them, so reconciliation dates
    # the refund by these, not by the row's creation (indexed: a run reads a window).
    first_request_at: Mapped[object | None] = mapped_column(UTCDateTime)
    last_request_at: Mapped[object | None] = mapped_column(UTCDateTime, index=True)
    next_retry_at: Mapped[object | None] = mapped_column(UTCDateTime)
    failure_reason: Mapped[str | None] = mapped_column(sa.String(500))
    retry_of_id: Mapped[int | None] = mapped_column(sa.ForeignKey("refunds.id"))
    superseded: Mapped[bool] = mapped_column(default=False)  # replaced by a retry / the wallet
    alerted: Mapped[bool] = mapped_column(default=False)
    # Times it became FAILED for a person (``execute._fail``): a refund found at Razorpay
    # or retried by an admin may fail again, and each such episode alerts once (its key).
    failures: Mapped[int] = mapped_column(default=0, server_default="0")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    processed_at: Mapped[object | None] = mapped_column(UTCDateTime, index=True)  # dashboard
    # A part of a failed refund that a refund made on Razorpay's dashboard (outside the
    # portal) had already given back: that refund's Razorpay id; the row is never sent
    # (``refunds.outside``). Several parts may name one dashboard refund, their sum kept
    # within it by the settlement (under the visit's lock).
    outside_refund_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    # On a failed refund: paise Razorpay had refunded of its payment outside the portal,
    # beyond what the payment leaves room for, when Send to wallet last asked (and was
    # refused): the refunds list offers to settle it (``failed.actions``).
    refunded_outside: Mapped[int | None] = mapped_column(sa.BigInteger)

    booking = relationship("IndividualBooking")
    visit = relationship("MasterBooking")
    patient = relationship("User", foreign_keys=[patient_id])
    payment = relationship("Payment")
    cancellation = relationship("Cancellation", back_populates="refunds")
    reschedule = relationship("Reschedule")
    retry_of = relationship("Refund", remote_side=[id])

    @property
    def is_open(self):
        """Counts towards what the item has refunded (not a failure that was replaced)."""
        return not self.superseded

    def owner_ids(self):
        return {self.patient_id}

    def __repr__(self):
        return f"<Refund {self.id} {self.destination} {self.amount} {self.status}>"


class RefundApproval(db.Model):
    """An admin's refund override above the calculated amount: the calculated part was
    refunded at cancellation; the ``extra`` waits here for a second, different admin."""

    __tablename__ = "refund_approvals"
    __table_args__ = (
        sa.CheckConstraint(_in("status", APPROVAL_STATUSES), name="status_known"),
        sa.CheckConstraint("extra > 0", name="extra_positive"),
        sa.CheckConstraint("override_amount >= calculated", name="override_above_calculated"),
        sa.CheckConstraint(
            "decided_by_id IS NULL OR decided_by_id <> requested_by_id", name="second_admin"
        ),
        sa.Index(
            "uq_refund_approvals_one_pending",
            "booking_id",
            unique=True,
            postgresql_where=sa.text(f"status = '{ApprovalStatus.PENDING}'"),
            sqlite_where=sa.text(f"status = '{ApprovalStatus.PENDING}'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        sa.ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    cancellation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("cancellations.id", ondelete="CASCADE"), index=True
    )
    requested_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    override_amount: Mapped[int] = mapped_column(sa.BigInteger)
    calculated: Mapped[int] = mapped_column(sa.BigInteger)
    extra: Mapped[int] = mapped_column(sa.BigInteger)  # override − calculated
    reason: Mapped[str] = mapped_column(sa.Text)
    # Where the extra goes (a further refund asked for later); None: the cancellation's choice.
    prefer_wallet: Mapped[bool | None] = mapped_column()
    status: Mapped[str] = mapped_column(sa.String(10), default=ApprovalStatus.PENDING, index=True)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[object | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    booking = relationship("IndividualBooking")
    cancellation = relationship("Cancellation")
    requested_by = relationship("User", foreign_keys=[requested_by_id])
    decided_by = relationship("User", foreign_keys=[decided_by_id])

    def owner_ids(self):
        return set()  # admins only
