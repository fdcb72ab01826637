"""Captured payments the gateway has not settled after the expected days.

Razorpay settles a day's captures T+2 working days later; ``SETTLEMENT_EXPECTED_DAYS``
(default 3, a weekend's margin on T+2) is how long a capture may wait before it counts as
overdue. Reconciliation turns each one into a NOT_SETTLED discrepancy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.booking.models import FeeCapture, Reschedule
from portal.booking.reschedule_payment import FEE_CREDITED_AT
from portal.config import setting
from portal.db import UTCDateTime
from portal.domain.states import PaymentStatus, RescheduleStatus
from portal.extensions import db
from portal.payments.models import DESK, WALLET, Payment

from .models import SettlementItem


@dataclass(frozen=True, slots=True)
class Unsettled:
    reference: str  # the Razorpay payment id
    our_type: str  # "payment" or "reschedule"
    our_id: int
    visit_id: int | None
    amount: int  # paise
    captured_at: datetime


def overdue_unsettled(as_of: datetime, days: int | None = None) -> list[Unsettled]:
    """Gateway payments captured before ``as_of − days`` that no stored settlement covers,
    oldest first: paid ones (a capture of the wrong amount too: a SUCCESSFUL row of its
    own, its money in the wallet), reschedule fees and the fee payments recorded on their
    own."""
    days = setting("SETTLEMENT_EXPECTED_DAYS") if days is None else days
    cutoff = as_of - timedelta(days=days)
    settled = sa.select(SettlementItem.entity_id)
    payments = db.session.execute(
        sa.select(
            Payment.razorpay_payment_id,
            Payment.id,
            Payment.master_id,
            sa.func.coalesce(Payment.captured_amount, Payment.amount),
            sa.func.coalesce(Payment.paid_at, Payment.created_at),
        ).where(
            Payment.status == PaymentStatus.SUCCESSFUL,
            Payment.kind.not_in((DESK, WALLET)),
            Payment.razorpay_payment_id.is_not(None),
            sa.func.coalesce(Payment.paid_at, Payment.created_at) < cutoff,
            Payment.razorpay_payment_id.not_in(settled),
        )
    )
    # A fee is money at Razorpay from when the booking moved, or, when it went to the
    # wallet, from that credit (not from its request: NOT_SETTLED came up to a day early).
    paid_at = sa.func.coalesce(
        Reschedule.done_at, FEE_CREDITED_AT, Reschedule.created_at, type_=UTCDateTime
    )
    fees = db.session.execute(
        sa.select(
            Reschedule.razorpay_payment_id,
            Reschedule.id,
            Reschedule.visit_id,
            Reschedule.total,
            paid_at,
        ).where(
            # EXPIRED: a fee paid after its request ended, in the wallet
            Reschedule.status.in_(
                (RescheduleStatus.DONE, RescheduleStatus.FAILED, RescheduleStatus.EXPIRED)
            ),
            Reschedule.razorpay_payment_id.is_not(None),
            paid_at < cutoff,
            Reschedule.razorpay_payment_id.not_in(settled),
        )
    )
    # A fee payment recorded on its own (the wrong amount, a second one): from its capture.
    captures = db.session.execute(
        sa.select(
            FeeCapture.razorpay_payment_id,
            FeeCapture.reschedule_id,
            Reschedule.visit_id,
            FeeCapture.amount,
            FeeCapture.captured_at,
        )
        .join(Reschedule, Reschedule.id == FeeCapture.reschedule_id)
        .where(
            FeeCapture.captured_at < cutoff,
            FeeCapture.razorpay_payment_id.not_in(settled),
        )
    )
    out = [Unsettled(r, "payment", i, v, a, t) for r, i, v, a, t in payments]
    out += [Unsettled(r, "reschedule", i, v, a, t) for r, i, v, a, t in fees]
    out += [Unsettled(r, "reschedule", i, v, a, t) for r, i, v, a, t in captures]
    return sorted(out, key=lambda u: (u.captured_at, u.reference))
