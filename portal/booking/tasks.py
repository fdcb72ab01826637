"""Background work of the booking capability: follow-ups of a confirmation, admin alerts,
cancelling a payment link after the commit, and the sweep that expires unpaid holds.

Importing this module also registers the webhook handlers and the busy-interval source
(``portal.payments.handlers``, ``portal.booking.claims``)."""
import logging

import sqlalchemy as sa

from portal import jobs
from portal.audit.service import record
from portal.booking import claims, lifecycle  # noqa: F401  (claims registers the busy source)
from portal.booking.models import MasterBooking
from portal.db import utcnow
from portal.domain.rates import format_inr
from portal.extensions import db
from portal.notify.mail import queue_mail
from portal.payments import handlers  # noqa: F401  (registers the webhook handlers)
from portal.payments.models import Payment

log = logging.getLogger("portal.booking")

@jobs.job("notify.booking_confirmed")
def booking_confirmed(visit_id):
    """The confirmation's follow-ups live with the notifications: the patient's notice and
    mail with the calendar file, each provider's notice, reminders, the NEW_BOOKING alert."""
    from portal.notify.tasks import on_booking_confirmed
    on_booking_confirmed(visit_id)


def _zone(clinic):
    from zoneinfo import ZoneInfo
    return ZoneInfo(clinic.timezone)


@jobs.job("notify.payment_attention")
def payment_attention(visit_id, reason):
    """HIGH admin alert (audit row for now); the patient hears about money kept for them."""
    visit = db.session.get(MasterBooking, visit_id)
    if visit is None:
        return
    from portal.notify.tasks import on_payment_attention
    on_payment_attention(visit_id, reason)
    if reason in ("LATE_PAYMENT_TO_WALLET", "AMOUNT_MISMATCH"):
        queue_mail(visit.patient.email, f"About your payment for visit {visit.number}",
                   f"Hello {visit.patient.name},\n\nWe received your payment for visit "
                   f"{visit.number} but could not use it to confirm the booking (the slot "
                   f"was no longer held, or the amount differed). The money is in your "
                   f"Clinic Portal wallet; our team will contact you.\n")


@jobs.job("payments.cancel_link")
def cancel_link(payment_id):
    """A replaced or expired visit's payment link is cancelled at Razorpay (best effort:
    if it is already paid/expired there, the webhook handlers take it from there)."""
    from portal.gateway import BadRequest, get_payin
    payment = db.session.get(Payment, payment_id)
    if payment is None or not payment.razorpay_link_id:
        return
    try:
        get_payin().cancel_payment_link(payment.razorpay_link_id)
    except BadRequest as exc:
        log.info("payment link %s not cancelled: %s", payment.razorpay_link_id, exc)


@jobs.periodic("booking.expire_holds", every=60)
def expire_holds(now=None, limit=500):
    """Expire unpaid holds whose time passed: items EXPIRED, claims freed, wallet
    reservation released, pending payment EXPIRED. One commit per visit.

    A visit waiting on a payment link is left to the link sweep
    (``notify.expire_payment_links``), which issues a new link while the start is ahead
    and expires the visit only when it cannot."""
    now = now or utcnow()
    pending_link = sa.select(Payment.id).where(
        Payment.master_id == MasterBooking.id, Payment.kind == "LINK",
        Payment.status == "PENDING").exists()
    ids = db.session.scalars(
        sa.select(MasterBooking.id).where(
            MasterBooking.status.in_(lifecycle.EXPIRABLE),
            MasterBooking.hold_expires_at <= now, ~pending_link)
        .order_by(MasterBooking.hold_expires_at).limit(limit)).all()
    db.session.rollback()
    done = 0
    for visit_id in ids:
        try:
            if lifecycle.expire_if_stale(visit_id, now):
                done += 1
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("could not expire visit %s", visit_id)
    return done
