"""Times held but not (yet) paid for, and clearing the stale ones out of a new booking's
way: a visit's hold whose time ran out, and the new time held for a move whose fee
checkout ran out (``Reschedule`` rows PENDING_PAYMENT). Runs in the caller's unit of
work."""

from dataclasses import dataclass

import sqlalchemy as sa

from portal.booking import claims, lifecycle
from portal.booking.models import (
    OPEN_VISIT_STATUSES,
    IndividualBooking,
    MasterBooking,
    Reschedule,
    SlotClaim,
    booking_providers,
)
from portal.catalog import busy
from portal.db import utcnow
from portal.domain.states import RESCHEDULE, BookingStatus, RescheduleStatus
from portal.extensions import db
from portal.i18n import N_

MSG_HOLD_EXPIRED = N_("The checkout expired before the fee was paid")
# A move's fee still unpaid when its booking is cancelled: the request ends with the
# booking (its hold is released with the booking's claims); a fee paid for it at the
# checkout still open goes to the wallet (``reschedule_payment``).
MSG_BOOKING_CANCELLED = N_(
    "The appointment was cancelled before the fee was paid; a payment for it goes to your wallet."
)


@dataclass(frozen=True)
class HoldLeft:
    """What is left of a hold when its payment did not go through: ``until`` (the times
    are held until then, and the payment may be tried again) or ``lapsed`` (the hold ran
    out: the times are let go, and may be chosen again). ``moving_to``: a move's new time
    (its fee's hold), None for a visit's times."""

    until: object = None
    lapsed: bool = False
    moving_to: object = None


def fee_hold_left(resched, now=None):
    """What is left of the new time a move's unpaid fee held (``HoldLeft``): until when, or
    lapsed (the checkout ran out, or a newer request replaced it); None when the move no
    longer waits for its fee (paid meanwhile, or refused), or its booking no longer moves
    (cancelled: nothing is held for it, nor to be chosen again). A read: the sweep lets it
    go."""
    if resched.booking.status != BookingStatus.CONFIRMED:
        return None
    now = now or utcnow()
    if resched.status == RescheduleStatus.PENDING_PAYMENT and resched.expires_at > now:
        return HoldLeft(until=resched.expires_at, moving_to=resched.new_start)
    if resched.status in (RescheduleStatus.PENDING_PAYMENT, RescheduleStatus.EXPIRED):
        return HoldLeft(lapsed=True, moving_to=resched.new_start)
    return None


def lock_reschedule(reschedule_id):
    """The reschedule row, freshly read and (PostgreSQL) locked: a capture, the sweep and a
    stale-hold release decide one after the other. Lock order: visit, then reschedule."""
    query = (
        sa.select(Reschedule)
        .where(Reschedule.id == reschedule_id)
        .execution_options(populate_existing=True)
    )
    if claims.is_postgres():
        query = query.with_for_update()
    return db.session.scalar(query)


def release_hold(resched):
    for claim in db.session.scalars(
        sa.select(SlotClaim).where(SlotClaim.reschedule_id == resched.id, SlotClaim.live.is_(True))
    ):
        claim.live = False


def close_pending(resched, status, reason):
    """A fee checkout that will not move the booking: its hold is released; a payment
    arriving for it later goes to the wallet."""
    RESCHEDULE.move(resched, status)
    resched.failure_reason = reason
    release_hold(resched)


def close_pending_moves(item, status, reason):
    """End every move of ``item`` still waiting for its fee (``close_pending``): a newer
    request replaces them, or the booking is cancelled. In the caller's unit of work,
    under the visit's lock (lock order: visit, then reschedule)."""
    query = (
        sa.select(Reschedule)
        .where(
            Reschedule.booking_id == item.id,
            Reschedule.status == RescheduleStatus.PENDING_PAYMENT,
        )
        .execution_options(populate_existing=True)
    )
    if claims.is_postgres():
        query = query.with_for_update()
    for resched in db.session.scalars(query).all():
        close_pending(resched, status, reason)
    db.session.flush()


def release_stale_hold(claim, now=None):
    """A held time whose checkout ran out but the sweep has not reached yet must not block
    anyone. True if released."""
    if claim.reschedule_id is None:
        return False
    resched = lock_reschedule(claim.reschedule_id)
    now = now or utcnow()
    if resched.status == RescheduleStatus.PENDING_PAYMENT:
        if resched.expires_at is None or resched.expires_at > now:
            return False
        close_pending(resched, RescheduleStatus.EXPIRED, MSG_HOLD_EXPIRED)
    elif resched.status in (RescheduleStatus.EXPIRED, RescheduleStatus.FAILED):
        release_hold(resched)  # closed, its hold somehow still live
    else:
        return False
    db.session.flush()
    return True


def clear_stale_holds(subjects, start, end, keep_visit_id=None):
    """Holds whose time ran out but the sweep has not reached yet must not block anyone.
    Returns the live claims still in the way (``claims.in_the_way``'s rows: read again
    only when a stale hold was cleared, which the sweep makes rare).
    ``keep_visit_id``: the visit being added to, never expired here; or a function
    giving it, asked only when a stale hold is found (finding it may cost a read)."""
    now = utcnow()
    found = claims.in_the_way(subjects, start, end)
    handled = set()  # the moves and visits acted on (two claims of one share its answer)
    for claim in found:
        if claim.reschedule_id is not None:  # a move's held time whose checkout ran out
            if ("move", claim.reschedule_id) not in handled and release_stale_hold(claim, now):
                handled.add(("move", claim.reschedule_id))
            continue
        if ("visit", claim.visit_id) in handled or not lifecycle.is_hold_stale(claim, now):
            continue  # the row has the visit's columns
        if callable(keep_visit_id):
            keep_visit_id = keep_visit_id()  # asked once
        if claim.visit_id != keep_visit_id:
            # Expired here, or by the sweep while this waited for the visit's lock: its
            # claims are released either way, so they are read again below.
            lifecycle.expire_if_stale(claim.visit_id, now)
            handled.add(("visit", claim.visit_id))
    return claims.in_the_way(subjects, start, end) if handled else found


@busy.clinic_release("bookings")
def release_stale_at_clinic(clinic_id, start, end, now):
    """A clinic's change (its deactivation, new opening hours or time zone:
    ``catalog.clinics``) first releases the holds at the clinic overlapping ``[start,
    end)`` whose time ran out by ``now`` and which the sweep has not reached
    (:func:`_release_stale`)."""
    _release_stale(IndividualBooking.clinic_id == clinic_id, start, end, now)


@busy.provider_release("bookings")
def release_stale_of_providers(provider_ids, start, end, now):
    """A provider's deactivation, leave or change of weekly hours (``catalog.providers``,
    ``catalog.availability``) first releases the providers' holds overlapping ``[start,
    end)`` whose time ran out by ``now`` (:func:`_release_stale`)."""
    booked = sa.select(booking_providers.c.booking_id).where(
        booking_providers.c.provider_id.in_(sorted(set(provider_ids)))
    )
    _release_stale(IndividualBooking.id.in_(booked), start, end, now)


def _release_stale(which, start, end, now):
    """Release the holds of the bookings ``which`` (a condition on ``IndividualBooking``)
    overlapping ``[start, end)`` whose time ran out by ``now`` and which the sweep has not
    reached: a visit's (its items EXPIRED, as the sweep would) and a move's held new time
    (the move EXPIRED). Else a catalog change that does not count them (a clinic's
    deactivation, hours or zone; a provider's deactivation, leave or hours) went through,
    and a capture arriving before the sweep still confirmed the visit, or moved the booking
    onto the held time, where the change had just closed. Released, such a capture is a
    late payment (``payment_events._late``: revived only if the time is still offered,
    which reads the clinic and the provider; else the wallet) or a late fee (the wallet).
    The change then reads the bookings live at the same ``now``, so no hold is neither
    counted nor released. One query finds them (none, most times); each visit is then
    locked, and each move after its visit (a capture's order), and released only if still
    stale. In the caller's unit of work, before it takes the providers' time locks: a hold
    locks its visit before that lock (``visits.add_item``), so the other order could wait
    in a circle with it."""
    visits = (
        sa.select(MasterBooking.id, sa.null())
        .join(IndividualBooking, IndividualBooking.master_id == MasterBooking.id)
        .where(
            which,
            IndividualBooking.status == BookingStatus.SCHEDULED,
            IndividualBooking.start_at < end,
            IndividualBooking.end_at > start,
            MasterBooking.status.in_(OPEN_VISIT_STATUSES),
            MasterBooking.hold_expires_at <= now,
        )
    )
    moves = (
        sa.select(Reschedule.visit_id, Reschedule.id)
        .join(IndividualBooking, IndividualBooking.id == Reschedule.booking_id)
        .where(
            which,
            Reschedule.status == RescheduleStatus.PENDING_PAYMENT,
            Reschedule.expires_at <= now,
            Reschedule.new_start < end,
            Reschedule.new_end > start,
        )
    )
    rows = db.session.execute(sa.union_all(visits, moves)).all()
    found = sorted({(v, r) for v, r in rows}, key=lambda row: (row[0], row[1] or 0))
    for visit_id, reschedule_id in found:
        if reschedule_id is None:
            lifecycle.expire_if_stale(visit_id, now)
            continue
        lifecycle.lock_visit(visit_id)
        resched = lock_reschedule(reschedule_id)
        if resched.status == RescheduleStatus.PENDING_PAYMENT and resched.expires_at <= now:
            close_pending(resched, RescheduleStatus.EXPIRED, MSG_HOLD_EXPIRED)
    if found:
        db.session.flush()
