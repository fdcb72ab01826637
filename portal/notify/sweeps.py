"""Periodic sweeps of the notify capability: bookings left behind past their end.

``notify.flag_no_shows`` (every 5 min) flags confirmed bookings never started by end + 2 h
and raises a NO_SHOW alert; ``notify.flag_not_completed`` (every 5 min) flags started
bookings never completed by end + the same grace (their fee is never earned, the visit
never closes) and raises a NOT_COMPLETED alert. One ``attention_flags`` row per booking
and kind; the rules and the flag rows are ``portal.booking.attention``'s. (Payment links
past their expiry are the booking capability's: ``portal.booking.links``.)"""

import sqlalchemy as sa

from portal import jobs
from portal.booking import attention
from portal.booking.attention import NO_SHOW, NOT_COMPLETED, AttentionFlag
from portal.booking.models import IndividualBooking
from portal.db import unit_of_work, utcnow
from portal.domain import schedule
from portal.extensions import db
from portal.notify import alerts
from portal.notify.links import visit_path
from portal.notify.reminders import local_time, policy

FLAG_NO_SHOWS = "notify.flag_no_shows"
FLAG_NOT_COMPLETED = "notify.flag_not_completed"

# Per flag kind: the domain rule on the booking's end, and the admins' alert (kind, words).
_SWEPT = {
    NO_SHOW: (
        schedule.is_no_show_candidate,
        alerts.NO_SHOW,
        "Possible no-show",
        "was confirmed but never started.",
    ),
    NOT_COMPLETED: (
        schedule.is_not_completed_candidate,
        alerts.NOT_COMPLETED,
        "Not marked completed",
        "was started but never marked completed: the provider's fee is not earned and the "
        "visit stays open until it is.",
    ),
}


@jobs.periodic(FLAG_NO_SHOWS, every=300)
def flag_no_shows(now=None, limit=500):
    return _flag_overdue(NO_SHOW, now, limit)


@jobs.periodic(FLAG_NOT_COMPLETED, every=300)
def flag_not_completed(now=None, limit=500):
    return _flag_overdue(NOT_COMPLETED, now, limit)


def _flag_overdue(kind, now, limit):
    """Flag (and alert on) each booking still in ``kind``'s status past its end + the
    grace, oldest first, each in a unit of work of its own; how many were flagged."""
    now = now or utcnow()
    is_candidate, alert, title, what = _SWEPT[kind]
    flagged = sa.select(AttentionFlag.id).where(
        AttentionFlag.booking_id == IndividualBooking.id, AttentionFlag.kind == kind
    )
    rows = db.session.execute(
        sa.select(IndividualBooking.id, IndividualBooking.end_at)
        .where(
            IndividualBooking.status == attention.FLAGGED_STATUS[kind],
            IndividualBooking.end_at <= now - policy().no_show_grace,
            ~flagged.exists(),
        )
        .order_by(IndividualBooking.end_at)
        .limit(limit)
    ).all()
    count = 0
    for booking_id, end in rows:
        if not is_candidate(end, now, policy()):
            continue
        with unit_of_work():
            booking = attention.flag_booking(booking_id, kind, now)
            if booking is None:
                continue  # moved on, or flagged by another worker just now
            visit = booking.visit
            providers = ", ".join(p.display_name for p in booking.providers)
            alerts.raise_alert(
                alert,
                f"{title}: visit {visit.number}",
                f"{visit.for_name}'s {booking.service.name} with {providers}, "
                f"{local_time(booking)}, {what}",
                link=visit_path("admin", visit_id=visit.id),
                dedupe_key=f"{kind.lower().replace('_', '-')}:{booking.id}",
            )
        count += 1
    return count


def open_flags(kind=None):
    query = sa.select(AttentionFlag).where(AttentionFlag.resolved_at.is_(None))
    if kind:
        query = query.where(AttentionFlag.kind == kind)
    return db.session.scalars(query.order_by(AttentionFlag.created_at)).all()


# Resolving a flag (with its note) is the booking capability's: portal.booking.attention.
resolve_flag = attention.resolve_flag
