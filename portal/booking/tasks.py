"""The booking capability's periodic work: expiring unpaid holds.

A visit waiting on a payment link is left to the link sweep
(``booking.expire_payment_links``, ``portal.booking.links``), which issues a new link
while the start is ahead and expires the visit only when it cannot."""

import logging

import sqlalchemy as sa

from portal import jobs
from portal.booking import lifecycle
from portal.booking.models import OPEN_VISIT_STATUSES, MasterBooking
from portal.db import unit_of_work, utcnow
from portal.domain.states import PaymentStatus
from portal.extensions import db
from portal.payments.models import LINK, Payment

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
            with unit_of_work():
                expired = lifecycle.expire_if_stale(visit_id, now)
        except Exception:
            log.exception("could not expire visit %s", visit_id)
            continue
        done += expired
    return done
