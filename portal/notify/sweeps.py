"""Periodic sweeps of the notify capability: no-shows.

``notify.flag_no_shows`` (every 5 min) flags confirmed bookings never started by end + 2 h
(``attention_flags``, one per booking) and raises a NO_SHOW alert. (Payment links past
their expiry are the booking capability's: ``portal.booking.links``.)"""

import sqlalchemy as sa

from portal import jobs
from portal.booking import attention
from portal.booking.attention import NO_SHOW, AttentionFlag
from portal.booking.models import IndividualBooking
from portal.db import insert_ignore, utcnow
from portal.domain import schedule
from portal.domain.states import BookingStatus
from portal.extensions import db
from portal.notify import alerts
from portal.notify.links import visit_path
from portal.notify.reminders import local_time, policy

FLAG_NO_SHOWS = "notify.flag_no_shows"


# --- no-shows --------------------------------------------------------------------------------


@jobs.periodic(FLAG_NO_SHOWS, every=300)
def flag_no_shows(now=None, limit=500):
    now = now or utcnow()
    cutoff = now - policy().no_show_grace
    flagged = sa.select(AttentionFlag.id).where(
        AttentionFlag.booking_id == IndividualBooking.id, AttentionFlag.kind == NO_SHOW
    )
    bookings = db.session.scalars(
        sa.select(IndividualBooking)
        .where(
            IndividualBooking.status == BookingStatus.CONFIRMED,
            IndividualBooking.end_at <= cutoff,
            ~flagged.exists(),
        )
        .order_by(IndividualBooking.end_at)
        .limit(limit)
    ).all()
    count = 0
    for booking in bookings:
        if not schedule.is_no_show_candidate(booking.end_at, now, policy()):
            continue
        if (
            insert_ignore(
                AttentionFlag,
                dict(
                    booking_id=booking.id, visit_id=booking.master_id, kind=NO_SHOW, created_at=now
                ),
                ["booking_id", "kind"],
            )
            is None
        ):
            continue  # flagged by another worker just now
        visit = booking.visit
        providers = ", ".join(p.display_name for p in booking.providers)
        alerts.raise_alert(
            alerts.NO_SHOW,
            f"Possible no-show: visit {visit.number}",
            f"{visit.for_name}'s {booking.service.name} with {providers}, "
            f"{local_time(booking)}, was confirmed but never started.",
            link=visit_path("admin", visit_id=visit.id),
            dedupe_key=f"no-show:{booking.id}",
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
