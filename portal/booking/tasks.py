"""The booking capability's periodic work: expiring unpaid holds.

Before a hold with an open Razorpay order is expired, the gateway is asked about the
order: a payment captured there whose webhooks never came (and whose patient never came
back) is applied as the webhook would have applied it, instead of being left at the
gateway on no booking (found by the seeded simulation, seed 19 with lost webhooks).

A visit waiting on a payment link is left to the link sweep
(``booking.expire_payment_links``, ``portal.booking.links``), which issues a new link
while the start is ahead and expires the visit only when it cannot."""

import logging

import sqlalchemy as sa

from portal import jobs
from portal.booking import lifecycle, payment_events
from portal.booking.models import OPEN_VISIT_STATUSES, MasterBooking
from portal.db import unit_of_work, utcnow
from portal.domain.states import PaymentStatus
from portal.extensions import db
from portal.gateway import GatewayError, get_payin
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
            if _captured_at_the_gateway(visit_id):
                continue  # paid after all: confirmed (or sent to the wallet), not expired
            with unit_of_work():
                expired = lifecycle.expire_if_stale(visit_id, now)
        except Exception:
            log.exception("could not expire visit %s", visit_id)
            continue
        done += expired
    return done


def _captured_at_the_gateway(visit_id):
    """Apply a capture Razorpay holds for the visit's open order; True if there was one.

    A gateway that cannot answer keeps the hold until the next sweep: expiring it could
    leave a capture we were never told of on no booking."""
    payment = db.session.scalar(
        sa.select(Payment).where(
            Payment.master_id == visit_id,
            Payment.kind == ORDER,
            Payment.status == PaymentStatus.PENDING,
            Payment.razorpay_order_id.is_not(None),
        )
    )
    if payment is None:
        return False
    try:
        found = get_payin().fetch_order_payments(payment.razorpay_order_id)
    except GatewayError:
        log.warning("order %s not checked; hold kept for now", payment.razorpay_order_id)
        return True
    captured = [p for p in found if p.get("status") == "captured"]
    for entity in captured:
        payment_events.capture(
            payment,
            razorpay_payment_id=entity["id"],
            amount=int(entity.get("amount") or 0),
            method=entity.get("method"),
            source="order check",
        )
    return bool(captured)
