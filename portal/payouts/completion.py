"""Starting and completing an individual booking, and posting the provider's earning.

(They live here, not in ``portal/booking/lifecycle.py``, because completing posts the
provider's earning and may start an INSTANT payout; the booking's visit status is
refreshed with ``portal.booking.lifecycle.refresh_status``.)

* ``start_booking(actor, booking_id)``: CONFIRMED → STARTED, from one hour before the start.
* ``complete_booking(actor, booking_id)``: STARTED → COMPLETED, not before the start
  (whoever asks, the provider or an admin), posts the earning
  (``complete:<booking id>``, once), closes the booking's open NOT_COMPLETED attention
  flag (``booking.attention.close_on_completion``: late, it is still completed), and for
  INSTANT providers enqueues a payout job.
* A provider acts only on bookings they are on; an admin on any. Another provider's
  booking is reported as not found (never confirmed to exist).
* Team appointments: the fee F is split into equal shares by largest remainder (lower
  provider id first for the odd paisa); each provider's commission is their own rate on
  their share, so each earns share − commission.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from portal.accounts.models import ADMIN, PROVIDER
from portal.audit.service import record
from portal.booking import attention
from portal.booking.errors import BookingError, NotFound
from portal.booking.lifecycle import lock_visit, refresh_status
from portal.booking.models import IndividualBooking
from portal.catalog.models import INSTANT
from portal.config import policy
from portal.db import unit_of_work, utcnow
from portal.domain.pricing import team_shares
from portal.domain.rates import apply_bps
from portal.domain.states import BOOKING, BookingStatus, InvalidTransition
from portal.domain.text import DateText, Text, status_label
from portal.domain.timezone import CLINIC_TIMEZONE
from portal.extensions import db
from portal.i18n import N_
from portal.jobs import enqueue
from portal.ledger import accounts as chart
from portal.ledger.service import credit, debit, post
from portal.payouts.common import INSTANT_JOB

START_EARLY = timedelta(hours=1)
MSG_TOO_EARLY = N_("Too early to start: this appointment begins at %(start)s.")
# Started early is fine (the patient may be early); completed before it begins is not: the
# earning would be posted, and an INSTANT payout begun, for an appointment not yet held.
MSG_COMPLETE_FROM = N_("You can mark it complete from %(start)s, when it starts.")
# One message per verb (a translation inflects the verb with the sentence); the status is
# a Label, said in the reader's language by the page.
MSG_CANNOT_START = N_("This appointment is %(status)s and cannot be started.")
MSG_CANNOT_COMPLETE = N_("This appointment is %(status)s and cannot be completed.")


def _lock_booking(booking_id):
    query = (
        sa.select(IndividualBooking)
        .where(IndividualBooking.id == booking_id)
        .execution_options(populate_existing=True)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return db.session.scalar(query)


def _booking_for(actor, booking_id):
    """The booking, locked after its visit, if the actor may act on it; else NotFound.
    The visit first, as every use case on a visit's items locks them (a cancellation, a
    refund's approval, a move): locking the item first deadlocked with them, and two
    items completed at once each saw the other still started and left the visit
    CONFIRMED for ever."""
    try:
        booking_id = int(booking_id)
    except (TypeError, ValueError):
        raise NotFound("booking") from None
    visit_id = db.session.scalar(
        sa.select(IndividualBooking.master_id).where(IndividualBooking.id == booking_id)
    )
    if visit_id is None:
        raise NotFound("booking")
    lock_visit(visit_id)
    booking = _lock_booking(booking_id)
    role = getattr(actor, "role", None)
    if booking is None or role not in (ADMIN, PROVIDER):
        raise NotFound("booking")
    if role == PROVIDER and actor.id not in {p.user_id for p in booking.providers}:
        raise NotFound("booking")
    return booking


def _move(booking, target, message):
    try:
        BOOKING.move(booking, target)
    except InvalidTransition:
        raise BookingError(
            Text(message, status=status_label(booking.status)), field="status"
        ) from None


def start_booking(actor, booking_id, *, now=None):
    now = now or utcnow()
    with unit_of_work():
        booking = _booking_for(actor, booking_id)
        if booking.status == BookingStatus.CONFIRMED and now < booking.start_at - START_EARLY:
            raise BookingError(Text(MSG_TOO_EARLY, start=_local(booking)), field="status")
        before = booking.status
        _move(booking, BookingStatus.STARTED, MSG_CANNOT_START)
        record(
            actor,
            "booking.start",
            "booking",
            booking.id,
            before={"status": before},
            after={"status": booking.status, "at": now.isoformat()},
        )
        return booking


def fee_shares(booking):
    """``[(provider, share of F)]``: a team's fee in equal shares, the odd paisa to the
    lowest provider id first (docs/payouts.md, "Team appointments")."""
    return team_shares(int(booking.fee), list(booking.providers))


def earning_shares(booking):
    """``[(provider, share of F, commission, earning)]`` for the booking's providers."""
    rows = []
    for provider, share in fee_shares(booking):
        commission = apply_bps(share, int(provider.commission_bps))
        rows.append((provider, share, commission, share - commission))
    return rows


def post_earning(booking):
    """``complete:<booking id>``: unearned fees F → each provider's payable (share −
    commission) and commission revenue. Posted once whatever repeats."""
    rows = earning_shares(booking)
    if not rows or booking.fee <= 0:
        return None
    lines = [debit(chart.UNEARNED_FEES, int(booking.fee))]
    lines += [credit(chart.provider_payable(p.id), earning) for p, _s, _c, earning in rows]
    lines.append(credit(chart.COMMISSION_REVENUE, sum(c for _p, _s, c, _e in rows)))
    return post(
        "booking_completed",
        lines,
        reference=("booking", booking.id),
        idempotency_key=f"complete:{booking.id}",
        memo=f"booking {booking.id} completed",
    )


def complete_booking(actor, booking_id, *, now=None):
    now = now or utcnow()
    with unit_of_work():
        booking = _booking_for(actor, booking_id)
        if booking.status == BookingStatus.STARTED and now < booking.start_at:
            raise BookingError(
                Text(MSG_COMPLETE_FROM, start=_local(booking, "%H:%M")), field="status"
            )
        before = booking.status
        _move(booking, BookingStatus.COMPLETED, MSG_CANNOT_COMPLETE)
        post_earning(booking)
        refresh_status(booking.visit)
        rows = earning_shares(booking)
        record(
            actor,
            "booking.complete",
            "booking",
            booking.id,
            before={"status": before},
            after={
                "status": booking.status,
                "at": now.isoformat(),
                "earnings": {str(p.id): e for p, _s, _c, e in rows},
            },
        )
        attention.close_on_completion(actor, booking, now)
        for provider, _share, _commission, earning in rows:
            if provider.payout_schedule == INSTANT and earning > 0:
                enqueue(
                    INSTANT_JOB,
                    provider_id=provider.id,
                    booking_id=booking.id,
                    dedupe_key=f"instant:{booking.id}:{provider.id}",
                )
        return booking


def _local(booking, fmt="%d %b %Y, %H:%M"):
    zone = ZoneInfo(getattr(booking.clinic, "timezone", None) or CLINIC_TIMEZONE)
    return DateText(booking.start_at.astimezone(zone).strftime(fmt))


# --- for the schedule page and the no-show sweep --------------------------------------------


def overdue_unstarted(now=None, grace=None, limit=500):
    """CONFIRMED bookings never started by end + grace (default the policy's 2 h): the
    candidates for the admin's no-show decision (the notifications sweep alerts on them)."""
    now = now or utcnow()
    grace = grace if grace is not None else policy().no_show_grace
    return db.session.scalars(
        sa.select(IndividualBooking)
        .where(
            IndividualBooking.status == BookingStatus.CONFIRMED,
            IndividualBooking.end_at <= now - grace,
        )
        .order_by(IndividualBooking.end_at)
        .limit(limit)
    ).all()


def can_start(booking, now=None):
    now = now or utcnow()
    return booking.status == BookingStatus.CONFIRMED and now >= booking.start_at - START_EARLY


def can_complete(booking, now=None):
    """STARTED and begun: as ``complete_booking`` refuses before the start (a booking
    started early is completed from its start)."""
    now = now or utcnow()
    return booking.status == BookingStatus.STARTED and now >= booking.start_at


def completes_from(booking, now=None):
    """When a booking started early may be completed (its start), while it cannot yet;
    else None (not started, or completable now)."""
    now = now or utcnow()
    if booking.status == BookingStatus.STARTED and now < booking.start_at:
        return booking.start_at
    return None


__all__ = [
    "start_booking",
    "complete_booking",
    "earning_shares",
    "post_earning",
    "overdue_unstarted",
    "can_start",
    "can_complete",
    "completes_from",
]
