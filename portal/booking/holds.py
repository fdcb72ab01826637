"""Times held but not (yet) paid for, and clearing the stale ones out of a new booking's
way: a visit's hold whose time ran out, and the new time held for a move whose fee
checkout ran out (``Reschedule`` rows PENDING_PAYMENT), which the sweep has not reached.

Lock order (docs/booking.md, "One lock order for a booking's money"). A use case that
writes claims holds its own visit (and move) before it reads the claims in its way, so it
never clears another person's stale hold itself: that would lock their visit and move
after its own (two patients each moving onto the other's lapsed hold waited in a circle)
and post their wallet part back before its own lock on the time (a circle with that
patient's wallet move). Instead the use case, run by :func:`clears_stale_holds`, stops
(its unit of work rolls back) when it finds one (:func:`in_the_way`); each stale hold is
then cleared in a unit of work of its own, as the sweep would (:func:`clear_stale_holds`:
the visit, its move, then the money; no lock on anyone's time), committed, and the use
case runs once more. A catalog change clears the holds in its way inside its own unit of
work, its money after its lock on the time (:func:`_release_stale`)."""

import contextvars
import functools
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
from portal.db import in_unit_of_work, unit_of_work, utcnow
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


class StaleHoldsInTheWay(Exception):  # noqa: N818 -- a signal, not an error
    """Raised by :func:`in_the_way` in a use case's first run under
    :func:`clears_stale_holds`: other people's holds whose time ran out are in its way
    (``stale``: ``(visit id, reschedule id or None)``, the visits' ids ascending, judged
    stale at ``now``). Its unit of work rolls back; nothing is kept."""

    def __init__(self, stale, now):
        super().__init__(stale)
        self.stale, self.now = stale, now


# Whether the use case running may stop to let the stale holds in its way be cleared
# (its first run under ``clears_stale_holds``); else they are in its way.
_MAY_CLEAR = contextvars.ContextVar("holds.may_clear", default=False)


def clears_stale_holds(use_case):
    """Decorate a use case that writes claims (and opens its own unit of work): when it
    finds other people's stale holds in its way (:class:`StaleHoldsInTheWay`, its work
    rolled back), clear each in a unit of work of its own (:func:`clear_stale_holds`,
    committed: expiring a stale hold is what the sweep does anyway, whatever the use case
    then decides) and run it once more. In that second run a stale hold still in the way
    (one that lapsed in between) is in the way, as a live one is: the person is told the
    time is taken and may try again, and nothing waits in a circle. Called inside another
    unit of work (``reschedule.rebook`` holds through ``visits.add_item``) it runs as it
    is: the outermost use case stops, clears and runs again; under none that may, a stale
    hold is in the way."""

    @functools.wraps(use_case)
    def run(*args, **kwargs):
        if _MAY_CLEAR.get() or in_unit_of_work():
            return use_case(*args, **kwargs)
        first = _MAY_CLEAR.set(True)
        try:
            return use_case(*args, **kwargs)
        except StaleHoldsInTheWay as found:
            stale, now = found.stale, found.now
        finally:
            _MAY_CLEAR.reset(first)
        for visit_id, reschedule_id in stale:
            # One visit a unit of work: it holds one visit's lock, never waits for another.
            with unit_of_work():
                clear_stale_holds(visit_id, reschedule_id, now)
        return use_case(*args, **kwargs)

    return run


def clear_stale_holds(visit_id, reschedule_id=None, now=None):
    """Clear a stale hold in the caller's unit of work, which does nothing else (the
    sweep's order: the visit, then its move, then the money; no lock on anyone's time):
    the visit's times (expired, its wallet part posted back, as the sweep does) or, with
    ``reschedule_id``, the new time held for the move whose fee checkout ran out (the
    move EXPIRED; no money was taken for it). Each only if still stale at ``now`` under
    the visit's lock (the sweep, a capture or a newer request may have got there first).
    True if something was released."""
    now = now or utcnow()
    if reschedule_id is None:
        return lifecycle.expire_if_stale(visit_id, now)
    lifecycle.lock_visit(visit_id)
    resched = lock_reschedule(reschedule_id)
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


def _stale_move(claim, now):
    """A move's held time whose fee checkout ran out (not yet closed), or whose move is
    closed and its hold somehow still live."""
    if claim.move_status == RescheduleStatus.PENDING_PAYMENT:
        return claim.move_expires_at is not None and claim.move_expires_at <= now
    return claim.move_status in (RescheduleStatus.EXPIRED, RescheduleStatus.FAILED)


def in_the_way(subjects, start, end, keep_visit_id=None):
    """The live claims in the way (``claims.in_the_way``'s rows, one read). Another
    person's stale hold among them is not cleared here (the module's docstring: this runs
    under the use case's own locks): in a use case's first run under
    :func:`clears_stale_holds` it raises :class:`StaleHoldsInTheWay`, for it to be
    cleared and the use case run again; else it is in the way as any live claim.
    ``keep_visit_id``: the visit being added to or moved in, whose own lapsed hold is
    the person's own time (in the way, never cleared); or a function giving it, asked
    only when a stale visit is found (finding it may cost a read)."""
    found = claims.in_the_way(subjects, start, end)
    if not _MAY_CLEAR.get():
        return found
    now = utcnow()
    stale = set()
    for claim in found:
        if claim.reschedule_id is not None:
            if _stale_move(claim, now):
                stale.add((claim.visit_id, claim.reschedule_id))
            continue
        if not lifecycle.is_hold_stale(claim, now):  # the row has the visit's columns
            continue
        if callable(keep_visit_id):
            keep_visit_id = keep_visit_id()  # asked once
        if claim.visit_id != keep_visit_id:
            stale.add((claim.visit_id, None))
    if stale:
        raise StaleHoldsInTheWay(sorted(stale, key=lambda s: (s[0], s[1] or 0)), now)
    return found


@busy.clinic_release("bookings")
def release_stale_at_clinic(clinic_id, start, end, now):
    """A clinic's change (its deactivation, new opening hours or time zone:
    ``catalog.clinics``) first releases the holds at the clinic overlapping ``[start,
    end)`` whose time ran out by ``now`` and which the sweep has not reached
    (:func:`_release_stale`; returns what releases them once the time is locked)."""
    return _release_stale(IndividualBooking.clinic_id == clinic_id, start, end, now)


@busy.provider_release("bookings")
def release_stale_of_providers(provider_ids, start, end, now):
    """A provider's deactivation, leave or change of weekly hours (``catalog.providers``,
    ``catalog.availability``) or a service's change (``catalog.service_changes``) first
    releases the providers' holds overlapping ``[start, end)`` whose time ran out by
    ``now`` (:func:`_release_stale`; returns what releases them once the time is
    locked)."""
    booked = sa.select(booking_providers.c.booking_id).where(
        booking_providers.c.provider_id.in_(sorted(set(provider_ids)))
    )
    return _release_stale(IndividualBooking.id.in_(booked), start, end, now)


def _release_stale(which, start, end, now):
    """Lock the holds of the bookings ``which`` (a condition on ``IndividualBooking``)
    overlapping ``[start, end)`` whose time ran out by ``now`` and which the sweep has not
    reached; returns the function that releases them, for the caller to call once it holds
    the lock on the providers' time (``catalog.busy``): a visit's (its items EXPIRED, its
    wallet part posted back, as the sweep would) and a move's held new time (the move
    EXPIRED). Else a catalog change that does not count them (a clinic's deactivation,
    hours or zone; a provider's deactivation, leave or hours; a service's change) went
    through, and a capture arriving before the sweep still confirmed the visit, or moved
    the booking onto the held time, where the change had just closed. Released, such a
    capture is a late payment (``payment_events._late``: revived only if the time is still
    offered, which reads the clinic and the provider; else the wallet) or a late fee (the
    wallet). The change then reads the bookings live at the same ``now``, so no hold is
    neither counted nor released. One query finds them (none, most times).

    Lock order (docs/booking.md), in the caller's unit of work after the catalog's locks:
    each visit ascending, each move after its visit (a capture's order), here, before the
    providers' time locks (a hold locks its visit before that lock, ``visits.add_item``,
    so the other order could wait in a circle with it); the release, whose money (a wallet
    part posted back) comes after the lock on the time, as every use case's does (posted
    before it, it waited in a circle with that patient's wallet move, which holds the time
    and waits for the wallet). Each is released only if still stale then."""
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
    locked = []
    for visit_id, reschedule_id in found:
        visit = lifecycle.lock_visit(visit_id)
        locked.append(visit if reschedule_id is None else lock_reschedule(reschedule_id))

    def release():
        for row in locked:
            if isinstance(row, Reschedule):
                if row.status == RescheduleStatus.PENDING_PAYMENT and row.expires_at <= now:
                    close_pending(row, RescheduleStatus.EXPIRED, MSG_HOLD_EXPIRED)
            elif row is not None and lifecycle.is_hold_stale(row, now):
                lifecycle.expire(row)
        if locked:
            db.session.flush()

    return release
