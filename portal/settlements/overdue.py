"""Captured payments the gateway has not settled in time.

Razorpay settles a day's captures T+2 *working* days later: ``SETTLEMENT_WORKING_DAYS``
(default 2) after the capture's day, counted on the Indian (IST) calendar, Saturdays,
Sundays and ``SETTLEMENT_HOLIDAYS`` skipped. A capture no stored settlement covers is
overdue from the day after that (the due day itself is the margin: the settlement may come
late in it, and a reconciliation run reads the settlements before it checks). So a Monday
capture is overdue on Thursday, a Thursday one on Tuesday, a Friday (or weekend) one on
Wednesday. Reconciliation turns each one into a NOT_SETTLED discrepancy.

Every Saturday counts as a holiday though banks work some: erring that way flags a capture
a day late at worst, never one Razorpay is not yet due to settle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from portal.booking.models import FeeCapture, Reschedule
from portal.booking.reschedule_payment import FEE_CREDITED_AT
from portal.config import setting
from portal.db import UTCDateTime
from portal.domain.states import PaymentStatus, RescheduleStatus
from portal.domain.timezone import CLINIC_TZ
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


def overdue_from(
    as_of: datetime, working_days: int, holidays: frozenset[date] = frozenset()
) -> datetime:
    """The first capture instant not yet overdue as of ``as_of``: midnight (IST) of the
    ``working_days``-th working day before ``as_of``'s day. A capture of an earlier day was
    due on a working day before today; one of that day or later is due today or after.
    Worked out here, so the query compares instants alike on PostgreSQL and SQLite."""
    day = as_of.astimezone(CLINIC_TZ).date()
    for _ in range(working_days):
        day -= timedelta(days=1)
        while day.weekday() >= 5 or day in holidays:  # the list is finite: the walk ends
            day -= timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=CLINIC_TZ).astimezone(UTC)


def settlement_working_days() -> int:
    """Working days after its IST day Razorpay settles a capture by (T+2 by default): the
    setting ``SETTLEMENT_WORKING_DAYS``, as the settlements page says it."""
    return setting("SETTLEMENT_WORKING_DAYS")


def overdue_unsettled(as_of: datetime, working_days: int | None = None) -> list[Unsettled]:
    """Gateway payments overdue for settlement as of ``as_of`` (``overdue_from``) that no
    stored settlement covers, oldest first: paid ones (a capture of the wrong amount too: a
    SUCCESSFUL row of its own, its money in the wallet), reschedule fees and the fee
    payments recorded on their own."""
    if working_days is None:
        working_days = settlement_working_days()
    cutoff = overdue_from(as_of, working_days, setting("SETTLEMENT_HOLIDAYS"))
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
