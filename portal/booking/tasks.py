"""The booking capability's periodic work: expiring unpaid holds.

Before a hold with an open Razorpay order is expired, the gateway is asked about the
order (``order_checks``): a payment captured there whose webhooks never came (and whose
patient never came back) is applied as the webhook would have applied it, instead of
being left at the gateway on no booking. Then the visit is locked and expired if its hold
is still open and run out: a capture that confirmed it closed it; one of the wrong amount
(in the wallet, the order still pending) did not, and the hold ends as any unpaid one.

A visit waiting on a payment link is left to the link sweep
(``booking.expire_payment_links``, ``portal.booking.links``), which issues a new link
while the start is ahead and expires the visit only when it cannot."""

import logging

import sqlalchemy as sa

from portal import jobs
from portal.booking import lifecycle, order_checks, payment_events
from portal.booking.models import OPEN_VISIT_STATUSES, MasterBooking
from portal.db import unit_of_work, utcnow
from portal.domain.states import PaymentStatus
from portal.extensions import db
from portal.payments.models import LINK, ORDER, Payment

log = logging.getLogger("portal.booking")


@jobs.periodic("booking.expire_holds", every=60)
def expire_holds(now=None, limit=500):
    """Expire unpaid holds whose time passed: items EXPIRED, claims freed, wallet
    reservation released, pending payment EXPIRED. One unit of work per visit, so one
    that fails leaves the others done."""
    now = now or utcnow()
    pending_link = (
        sa.select(Payment.id)
        .where(
            Payment.master_id == MasterBooking.id,
            Payment.kind == LINK,
            Payment.status == PaymentStatus.PENDING,
        )
        .exists()
    )
    ids = db.session.scalars(
        sa.select(MasterBooking.id)
        .where(
            MasterBooking.status.in_(OPEN_VISIT_STATUSES),
            MasterBooking.hold_expires_at <= now,
            ~pending_link,
        )
        .order_by(MasterBooking.hold_expires_at)
        .limit(limit)
    ).all()
    done = 0
    for visit_id in ids:
        try:
            if not _gateway_captures_applied(visit_id):
                continue  # Razorpay could not say: the hold is kept for the next sweep
            with unit_of_work():
                # Read again under the lock: a capture that paid confirmed the visit (no
                # longer open); one that paid for nothing left it open, and it expires.
                expired = lifecycle.expire_if_stale(visit_id, now)
        except Exception:
            log.exception("could not expire visit %s", visit_id)
            continue
        done += expired
    return done


def _gateway_captures_applied(visit_id):
    """Apply the captures Razorpay holds for the visit's open order, as its webhooks would
    (``payment_events.capture``). False when the gateway could not answer."""
    payment = db.session.scalar(
        sa.select(Payment).where(
            Payment.master_id == visit_id,
            Payment.kind == ORDER,
            Payment.status == PaymentStatus.PENDING,
            Payment.razorpay_order_id.is_not(None),
        )
    )
    if payment is None:
        return True

    def apply(razorpay_payment_id, amount, method):
        payment_events.capture(
            payment,
            razorpay_payment_id=razorpay_payment_id,
            amount=amount,
            method=method,
            source="order check",
        )

    return order_checks.apply_captures(payment.razorpay_order_id, apply)
