"""Periodic sweeps: payment links past their expiry, and no-shows.

* ``notify.expire_payment_links`` (every 60 s) finds PENDING payment links whose
  ``expires_at`` passed and queues one ``notify.payment_link_expired`` job per link (dedupe
  key per payment). The job marks the link EXPIRED (timeline entry ``link.expired``), tells
  the patient, and — when the first start is still far enough ahead for a new link
  (``domain.schedule.payment_link_expiry``) — keeps the hold, issues a new link through
  ``booking.service.create_payment_link`` and sends it; otherwise the visit expires and its
  slots are freed (``booking.lifecycle.expire``). Admins get the LINK_EXPIRED attention.
* ``notify.flag_no_shows`` (every 5 min) flags confirmed bookings never started by end +
  2 h (``attention_flags``, one per booking) and raises a NO_SHOW alert."""
import logging

import sqlalchemy as sa

from portal import jobs
from portal.accounts.models import ADMIN, User
from portal.booking.models import IndividualBooking
from portal.db import utcnow
from portal.domain import schedule
from portal.extensions import db
from portal.notify import alerts
from portal.notify.center import notify_user
from portal.notify.dbutil import insert_ignore
from portal.notify.links import visit_path
from portal.notify.models import NO_SHOW, AttentionFlag
from portal.notify.reminders import local_time, policy
from portal.payments.models import EXPIRED, LINK, PENDING, Payment

log = logging.getLogger("portal.notify.sweeps")

EXPIRE_LINKS = "notify.expire_payment_links"
LINK_EXPIRED = "notify.payment_link_expired"
FLAG_NO_SHOWS = "notify.flag_no_shows"


# --- payment links ---------------------------------------------------------------------------

@jobs.periodic(EXPIRE_LINKS, every=60)
def expire_payment_links(now=None, limit=500):
    now = now or utcnow()
    ids = db.session.scalars(
        sa.select(Payment.id).where(Payment.kind == LINK, Payment.status == PENDING,
                                    Payment.expires_at <= now)
        .order_by(Payment.expires_at).limit(limit)).all()
    for payment_id in ids:
        jobs.enqueue(LINK_EXPIRED, payment_id=payment_id,
                     dedupe_key=f"link-expired:{payment_id}")
    return len(ids)


def _acting_admin(payment):
    """Who issues the replacement link: the admin who made the first, else the first
    active admin (recorded as the actor in the audit log)."""
    creator = db.session.get(User, payment.created_by_id) if payment.created_by_id else None
    if creator is not None and creator.role == ADMIN and creator.active:
        return creator
    return db.session.scalar(sa.select(User).where(User.role == ADMIN, User.active.is_(True))
                             .order_by(User.id).limit(1))


@jobs.job(LINK_EXPIRED)
def payment_link_expired(payment_id):
    """One expired link. Commits in steps (the link service commits and calls the gateway):
    1) link EXPIRED, hold kept or visit expired, patient told; 2) the new link; 3) sent."""
    from portal.booking import lifecycle
    from portal.booking.models import ATTENTION_LINK_EXPIRED

    payment = db.session.get(Payment, payment_id)
    if payment is None:
        return
    visit = lifecycle.lock_visit(payment.master_id)
    db.session.refresh(payment)
    now = utcnow()
    number = visit.number
    if payment.status == PENDING:
        if payment.expires_at is not None and payment.expires_at > now:
            return  # extended meanwhile
        payment.status = EXPIRED
        lifecycle.add_attempt(payment, "link.expired", EXPIRED)
        jobs.enqueue("payments.cancel_link", payment_id=payment.id,
                     dedupe_key=f"cancel-link:{payment.id}")
    elif payment.status != EXPIRED:
        return  # paid (or failed) meanwhile: nothing expired
    lifecycle.needs_attention(visit, ATTENTION_LINK_EXPIRED)
    newer = [p for p in visit.payments if p.kind == LINK and p.id > payment.id]
    if newer:  # a re-run after the new link was made: only (re)send it
        if newer[-1].status == PENDING:
            _send_new_link(visit, newer[-1])
            db.session.commit()
        return
    first_start = visit.first_start
    admin = _acting_admin(payment)
    renewable = (visit.is_open and first_start is not None and admin is not None
                 and any(i.status == "SCHEDULED" for i in visit.items)
                 and schedule.payment_link_expiry(now, first_start, policy()) is not None)
    link = visit_path("patient", visit_id=visit.id)
    patient_id = visit.patient_id
    if not renewable:
        if visit.is_open:
            lifecycle.expire(visit, reason="payment link expired")
        notify_user(patient_id, "payment.link_expired",
                    f"Payment link expired: visit {number}",
                    "The payment link for your visit has expired and the booking has lapsed. "
                    "Please book again or contact the clinic.", link=link,
                    dedupe_key=f"link-expired:{payment.id}")
        db.session.commit()
        return
    # Keep the slots while the new link is made (the old hold ended with the old link).
    visit.hold_expires_at = now + lifecycle.hold_lifetime()
    lifecycle.refresh_status(visit)
    notify_user(patient_id, "payment.link_expired", f"Payment link expired: visit {number}",
                "The payment link for your visit has expired. We are sending you a new one.",
                link=link, email=False, dedupe_key=f"link-expired:{payment.id}")
    db.session.commit()

    from portal.booking import service
    from portal.booking.errors import BookingError, PaymentError
    visit_id = visit.id
    try:
        new = service.create_payment_link(admin, visit_id)
    except PaymentError as exc:  # the gateway is away: try again with the outbox's backoff
        raise jobs.RetryLater(exc.message) from exc
    except BookingError as exc:
        log.warning("no new payment link for visit %s: %s", visit_id, exc.message)
        visit = lifecycle.lock_visit(visit_id)
        if visit is not None and visit.is_open:
            lifecycle.expire(visit, reason=f"payment link expired; no new link: {exc.message}")
        notify_user(patient_id, "payment.link_lapsed", f"Visit {number} lapsed",
                    "We could not issue a new payment link and the booking has lapsed. "
                    "Please book again or contact the clinic.", link=link,
                    dedupe_key=f"link-lapsed:{payment_id}")
        db.session.commit()
        return
    _send_new_link(db.session.get(type(visit), visit_id), new)
    db.session.commit()


def _send_new_link(visit, new):
    patient_id, number, link = visit.patient_id, visit.number, visit_path(
        "patient", visit_id=visit.id)
    items = [i for i in visit.items if i.status == "SCHEDULED"]
    when = "; ".join(f"{i.service.name}, {local_time(i)}" for i in items)
    notify_user(patient_id, "payment.link_new", f"New payment link: visit {number}",
                f"Pay {_inr(new.amount)} by {local_time_of(new.expires_at, items)} to keep "
                f"your booking ({when}): {new.link_url}",
                link=new.link_url or link, mail_template="payment_link",
                mail_context={"payment": new, "visit": visit, "items": items, "when": when,
                              "amount": _inr(new.amount),
                              "expires": local_time_of(new.expires_at, items)},
                dedupe_key=f"link-new:{new.id}")


def _inr(paise):
    from portal.domain.rates import format_inr
    return format_inr(paise)


def local_time_of(when, items):
    from zoneinfo import ZoneInfo
    zone = ZoneInfo(items[0].clinic.timezone if items else policy().default_timezone)
    local = when.astimezone(zone)
    return local.strftime("%a %d %b %Y, %I:%M %p ").lstrip("0") + (local.tzname() or "")


# --- no-shows --------------------------------------------------------------------------------

@jobs.periodic(FLAG_NO_SHOWS, every=300)
def flag_no_shows(now=None, limit=500):
    now = now or utcnow()
    cutoff = now - policy().no_show_grace
    flagged = sa.select(AttentionFlag.id).where(
        AttentionFlag.booking_id == IndividualBooking.id, AttentionFlag.kind == NO_SHOW)
    bookings = db.session.scalars(
        sa.select(IndividualBooking).where(
            IndividualBooking.status == "CONFIRMED", IndividualBooking.end_at <= cutoff,
            ~flagged.exists())
        .order_by(IndividualBooking.end_at).limit(limit)).all()
    count = 0
    for booking in bookings:
        if not schedule.is_no_show_candidate(booking.end_at, now, policy()):
            continue
        if insert_ignore(AttentionFlag, dict(booking_id=booking.id, visit_id=booking.master_id,
                                             kind=NO_SHOW, created_at=now),
                         ["booking_id", "kind"]) is None:
            continue  # flagged by another worker just now
        visit = booking.visit
        providers = ", ".join(p.display_name for p in booking.providers)
        alerts.raise_alert(alerts.NO_SHOW, f"Possible no-show: visit {visit.number}",
                           f"{visit.for_name}'s {booking.service.name} with {providers}, "
                           f"{local_time(booking)}, was confirmed but never started.",
                           link=visit_path("admin", visit_id=visit.id),
                           dedupe_key=f"no-show:{booking.id}")
        count += 1
    return count


def open_flags(kind=None):
    query = sa.select(AttentionFlag).where(AttentionFlag.resolved_at.is_(None))
    if kind:
        query = query.where(AttentionFlag.kind == kind)
    return db.session.scalars(query.order_by(AttentionFlag.created_at)).all()


def resolve_flag(admin, flag_id, note=""):
    from portal.audit.service import record
    flag = db.session.get(AttentionFlag, flag_id)
    if flag is None or flag.resolved_at is not None:
        return flag
    flag.resolved_at, flag.resolved_by_id, flag.note = utcnow(), admin.id, note or None
    record(admin, "attention.resolve", "booking", flag.booking_id,
           after={"kind": flag.kind, "note": note})
    return flag
