"""Slot claims: who is busy when, and the database's last word on double booking.

PostgreSQL: the exclusion constraint ``ex_slot_claims_no_overlap`` refuses a second live
claim overlapping the same subject; a concurrent loser gets SQLSTATE 23P01 at flush or
commit, which becomes :class:`SlotUnavailable`. The Python pre-check only makes the
common case friendly (and cheap); it decides nothing.

A provider's claim is also refused over their leave, once they are inactive, outside
their weekly hours at the booking's clinic, at a clinic inactive or closed then, or of a
service inactive or no longer theirs, by the trigger ``tg_slot_claims_provider_present``
after the provider's advisory lock, which a leave, a deactivation, a change of weekly
hours, a clinic's closing or new hours and a service's deactivation or a provider taken
from it take too (``portal.catalog.time_lock``): such a change and a hold at once never
both win.

The person's claim (one per hold) is refused for an account closed or deactivated by
then, by the trigger ``tg_slot_claims_account_open``: it takes the account's row ``FOR KEY
SHARE``, which a closure and an administrator's deactivation of a patient take ``FOR
UPDATE`` before they read what is still booked (``privacy.closure``,
``booking.deactivation``), so of the two and a hold at once the second sees the first's
commit: the closure (deactivation) is refused over the hold, or the hold is refused
(:class:`AccountClosed`, :class:`AccountDeactivated`). A revival (a late
payment making an expired booking's claims live again) is refused the same way. The
trigger runs inside the claims' INSERT: a hold sends no statement more.

SQLite (the embedded mode, one process): no exclusion constraints, so every transaction
that writes live claims (and every leave, deactivation, change of hours and closure of an
account) holds one process-wide lock from its check to its commit (:func:`serialized`,
``catalog.time_lock``'s); a hold's claims and a revival read the account's closure and
deactivation under it (one statement more there). Two processes on one SQLite file are
not supported.

A use case that writes claims opens ``with claims.claiming(), unit_of_work():`` — the lock
and the lost-race translation outside, so the commit happens inside both.
"""

import logging
from contextlib import contextmanager
from functools import cache

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from portal.accounts.models import User
from portal.booking.errors import AccountClosed, AccountDeactivated, SlotUnavailable
from portal.booking.models import (
    LIVE_ITEM_STATUSES,
    IndividualBooking,
    MasterBooking,
    Reschedule,
    SlotClaim,
    booking_providers,
)
from portal.catalog import busy
from portal.catalog.time_lock import is_postgres, lock_subjects, serialized
from portal.db import Deadlocked, column_rows, doing, unit_of_work
from portal.domain.states import BookingStatus, RescheduleStatus
from portal.extensions import db

log = logging.getLogger("portal.booking")

EXCLUSION_VIOLATION = "23P01"
DEADLOCK_DETECTED = "40P01"
CHECK_VIOLATION = "23514"
# The names the claims' trigger gives its refusals of a closed and of a deactivated
# account (models.py).
ACCOUNT_OPEN = "slot_claims_account_open"
ACCOUNT_ACTIVE = "slot_claims_account_active"


@contextmanager
def claiming():
    """:func:`serialized`, and a lost race (at flush or at the commit of the unit of work
    inside) raised as :class:`SlotUnavailable` (a deadlock as ``Deadlocked``:
    :func:`_raise_refusal`)."""
    with serialized():
        try:
            yield
        except (IntegrityError, OperationalError) as exc:
            _raise_refusal(exc)
            raise


def _raise_refusal(exc):
    """A claim write's refusal as the person hears it: the time lost to someone else
    (SlotUnavailable), or the account closed (AccountClosed) or deactivated
    (AccountDeactivated) meanwhile. A deadlock is none of these (:func:`is_lost_race`):
    logged as an error, with the circle PostgreSQL reports, and raised as
    :class:`Deadlocked` (a ``Busy``: 503, try again; a job is tried again)."""
    if is_lost_race(exc):
        raise SlotUnavailable() from None
    if _sqlstate(exc) == DEADLOCK_DETECTED:
        diag = getattr(getattr(exc, "orig", None), "diag", None)
        log.error(
            "deadlock writing slot claims (40P01), answered busy: a lock-order fault, not a"
            " lost race (docs/booking.md, lock order); %s; %s",
            doing(),
            getattr(diag, "message_detail", None) or str(getattr(exc, "orig", exc)),
        )
        raise Deadlocked("PostgreSQL aborted a claims write to break a deadlock") from exc
    if is_account_closed(exc):
        raise AccountClosed() from None
    if _refused_as(exc, ACCOUNT_ACTIVE):
        raise AccountDeactivated() from None


def _sqlstate(exc):
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)


def is_account_closed(exc):
    """The claims' trigger refused a claim of a closed account."""
    return _refused_as(exc, ACCOUNT_OPEN)


def _refused_as(exc, name):
    diag = getattr(getattr(exc, "orig", None), "diag", None)
    return _sqlstate(exc) == CHECK_VIOLATION and getattr(diag, "constraint_name", None) == name


def is_exclusion_violation(exc):
    return _sqlstate(exc) == EXCLUSION_VIOLATION


def is_lost_race(exc):
    """A claim write lost to a concurrent one: the exclusion constraint (or the claims'
    trigger, in its words) refused it; the slot went to someone else. Not a deadlock
    (40P01), which it once was: two overlapping inserts could each wait for the other's
    index entry, but every claim writer now takes its subjects' locks first, in one order
    (:func:`lock_subjects`), so claimers of one time queue there and a deadlock can only
    be a fault in some lock order (three such were answered "Slot no longer available"
    for a time nobody took). :func:`_raise_refusal` logs it and answers busy."""
    return _sqlstate(exc) == EXCLUSION_VIOLATION


def _overlapping(subjects, start, end):
    return sa.select(SlotClaim).where(
        SlotClaim.subject.in_(subjects),
        SlotClaim.live.is_(True),
        SlotClaim.start_at < end,
        SlotClaim.end_at > start,
    )


def conflicts(subjects, start, end, exclude_booking_ids=()):
    """Live claims of any of ``subjects`` overlapping [start, end)."""
    query = _overlapping(list(subjects), start, end)
    if exclude_booking_ids:
        query = query.where(SlotClaim.booking_id.not_in(list(exclude_booking_ids)))
    return list(db.session.scalars(query))


@cache
def _in_the_way():
    """Every hold reads this first (and a race's every loser only this): built once, as
    columns. Loading each claim with its booking and visit as objects cost a fifth of a
    loser's answer, for the few values deciding whether a hold is stale."""
    return (
        sa.select(
            SlotClaim.id,
            SlotClaim.subject,
            SlotClaim.reschedule_id,
            MasterBooking.id.label("visit_id"),
            MasterBooking.status,
            MasterBooking.hold_expires_at,
            Reschedule.status.label("move_status"),
            Reschedule.expires_at.label("move_expires_at"),
        )
        .join(IndividualBooking, IndividualBooking.id == SlotClaim.booking_id)
        .join(MasterBooking, MasterBooking.id == IndividualBooking.master_id)
        .outerjoin(Reschedule, Reschedule.id == SlotClaim.reschedule_id)
        .where(
            SlotClaim.subject.in_(sa.bindparam("subjects", expanding=True)),
            SlotClaim.live.is_(True),
            SlotClaim.start_at < sa.bindparam("end"),
            SlotClaim.end_at > sa.bindparam("start"),
        )
    )


def in_the_way(subjects, start, end):
    """``conflicts`` as rows, what a hold reads first: each claim's ``id``,
    ``subject`` and ``reschedule_id`` (a move's held time) with that move's
    ``move_status`` and ``move_expires_at``, and its visit's ``visit_id``, ``status`` and
    ``hold_expires_at`` (what ``lifecycle.is_hold_stale`` reads)."""
    return column_rows(_in_the_way(), {"subjects": list(subjects), "start": start, "end": end})


def add_claims(booking, subjects):
    """Add live claims for ``booking`` and flush; a lost race raises SlotUnavailable, an
    account closed by then AccountClosed, one deactivated by then AccountDeactivated."""
    lock_subjects(subjects)
    # SQLite: what PostgreSQL's trigger refuses, read here under the lock (the request's
    # copy of the patient, loaded before it waited for the lock, may predate a closure or
    # a deactivation).
    if not is_postgres():
        refuse_if_gone(booking.visit.patient_id)
    for subject in subjects:
        # booking= joins booking.claims without loading it (a new booking's claims are
        # empty; a load would read them back for nothing).
        db.session.add(
            SlotClaim(
                booking=booking,
                subject=subject,
                start_at=booking.start_at,
                end_at=booking.end_at,
                live=True,
            )
        )
    flush_claims()


def flush_claims():
    """Flush; a lost race raises SlotUnavailable (the unit of work rolls back)."""
    try:
        db.session.flush()
    except (IntegrityError, OperationalError) as exc:
        _raise_refusal(exc)
        raise


def refuse_if_gone(patient_id):
    """SQLite: raise AccountClosed or AccountDeactivated for the account as the database
    has it now, not the session's copy (a closure and a deactivation hold
    :func:`serialized` to their commit, so this read, under it, sees one made since the
    account was first read)."""
    closed_at, active = db.session.execute(
        sa.select(User.closed_at, User.active).where(User.id == patient_id)
    ).one()
    if closed_at is not None:
        raise AccountClosed()
    if not active:
        raise AccountDeactivated()


def release(booking):
    for claim in booking.claims:
        claim.live = False


def relive(booking):
    """Make an expired booking's claims live again (a late payment); inside a nested unit
    of work (a SAVEPOINT) so a conflict leaves the outer one usable. Returns True on
    success; raises AccountClosed (AccountDeactivated) for an account closed (deactivated)
    meanwhile (the outer one still usable)."""
    own = [c for c in booking.claims if c.reschedule_id is None]  # not a move's held time
    subjects = [c.subject for c in own]
    # In a hold's order: the claims' trigger would take the providers' locks one by one,
    # in another order, and a hold of the same team at another time could then deadlock.
    lock_subjects(subjects)
    if conflicts(subjects, booking.start_at, booking.end_at, exclude_booking_ids=[booking.id]):
        return False
    if not is_postgres():  # serialized: the checks here are authoritative
        refuse_if_gone(booking.visit.patient_id)  # what PostgreSQL's trigger refuses
        for claim in own:
            claim.live = True
        db.session.flush()
        return True
    try:
        with unit_of_work():
            for claim in own:
                claim.live = True
            db.session.flush()
    except (IntegrityError, OperationalError) as exc:
        if is_lost_race(exc):
            return False
        _raise_refusal(exc)
        raise
    return True


# --- busy intervals for find-a-doctor ---------------------------------------------------


@busy.query_source("bookings")
def live_booking_intervals(w):
    """Live claims of providers, except holds whose time has passed (the sweep frees them
    within a minute; add_item expires such a stale hold itself when it is in the way),
    and the new times held for moves whose fee is being paid: one SELECT on the busy
    window's parameters ``w``, which the slot lookup reads together with availability and
    leave (one query for find-a-doctor). Its fourth column: when an unpaid hold lapses
    (the visit's hold; NULL for a paid booking, which is on the provider's schedule), for a
    leave's refusal to name holds apart (``catalog.checks``); its fifth, whether the
    booking has been started (no longer to be cancelled or moved: named apart too)."""
    bookings = (
        sa.select(
            booking_providers.c.provider_id,
            IndividualBooking.start_at,
            IndividualBooking.end_at,
            unpaid_hold_lapses(),
            (IndividualBooking.status == BookingStatus.STARTED).label("started"),
        )
        .join(IndividualBooking, IndividualBooking.id == booking_providers.c.booking_id)
        .join(MasterBooking, MasterBooking.id == IndividualBooking.master_id)
        .where(
            booking_providers.c.provider_id.in_(w.provider_ids),
            IndividualBooking.status.in_(LIVE_ITEM_STATUSES),
            IndividualBooking.start_at < w.end,
            IndividualBooking.end_at > w.start,
            hold_still_active(w.now),
        )
    )
    return sa.union_all(bookings, held_intervals_query(w))


def unpaid_hold_lapses():
    """When a booking's time lapses unpaid (its visit's hold), NULL once paid: an item
    SCHEDULED is held while its visit is paid for (``BookingStatus``)."""
    return sa.case(
        (IndividualBooking.status == BookingStatus.SCHEDULED, MasterBooking.hold_expires_at),
        else_=sa.null(),
    )


def hold_still_active(now):
    """The condition (over IndividualBooking joined to its MasterBooking) that a booking is
    not on an unpaid hold, or on one not lapsed at ``now`` (an item SCHEDULED is held while
    its visit is paid for): a lapsed hold blocks no one,
    whether or not the sweep has expired it yet (the busy intervals, a clinic's bookings,
    the provider's schedule)."""
    return sa.or_(
        IndividualBooking.status != BookingStatus.SCHEDULED,
        MasterBooking.hold_expires_at.is_(None),
        MasterBooking.hold_expires_at > now,
    )


def move_hold_still_active(now):
    """The condition (over a Reschedule) that a move's new time is still held at ``now``:
    its fee still being paid online and its checkout not run out (the sweep may not have
    expired it yet: a lapsed one blocks no one). With a live claim of the move's, it is a
    held time: :func:`held_move_claims`."""
    return sa.and_(
        Reschedule.status == RescheduleStatus.PENDING_PAYMENT,
        Reschedule.expires_at > now,
    )


def held_move_claims(now, *columns, start=None, end=None, each_provider=False):
    """SELECT ``columns`` from the live claims of the moves whose new time is still held at
    ``now`` (a claim joined to its Reschedule, :func:`move_hold_still_active`): the one
    query of a held move, which the busy intervals, a clinic's bookings, the provider's
    schedule and its rows' "Moving to" each extend. ``start`` / ``end``: only claims
    overlapping ``[start, end)``. ``each_provider``: joined to the booking's providers, a
    row per provider on their own claim (``booking_providers.c.provider_id``)."""
    query = (
        sa.select(*columns)
        .select_from(SlotClaim)
        .join(Reschedule, Reschedule.id == SlotClaim.reschedule_id)
        .where(SlotClaim.live.is_(True), move_hold_still_active(now))
    )
    if start is not None:
        query = query.where(SlotClaim.end_at > start)
    if end is not None:
        query = query.where(SlotClaim.start_at < end)
    if each_provider:
        query = query.join(
            booking_providers, booking_providers.c.booking_id == SlotClaim.booking_id
        ).where(
            SlotClaim.subject
            == sa.literal("provider:") + sa.cast(booking_providers.c.provider_id, sa.String)
        )
    return query


def held_intervals_query(w):
    """(provider id, start, end, lapses at, started: false) of new times held for moves
    whose fee is being paid (each lapses with the fee's checkout): a SELECT the bookings'
    busy source unions with its own (one query for find-a-doctor)."""
    return held_move_claims(
        w.now,
        booking_providers.c.provider_id,
        SlotClaim.start_at,
        SlotClaim.end_at,
        Reschedule.expires_at,
        sa.false().label("started"),  # a move's new time: not begun
        start=w.start,
        end=w.end,
        each_provider=True,
    ).where(booking_providers.c.provider_id.in_(w.provider_ids))


@busy.clinic_source("bookings")
def live_bookings_at_clinic(clinic_id, start, end, now):
    """The live bookings at a clinic overlapping ``[start, end)``, a row per provider
    booked, with the visit's number: what a clinic's deactivation, narrowed opening hours
    or new time zone is refused over (``catalog.clinics``). Live at ``now`` as for the
    providers' busy intervals above (a hold whose time ran out and a cancelled booking are
    not: the clinic's change has released the stale holds there first,
    ``holds.release_stale_at_clinic``), and the new times held for moves whose fee is being
    paid (a move keeps its clinic), each a row of its booking's (``moving`` true): one
    booking to the administrator. Each with when it lapses unpaid (a visit's hold, a move's
    fee checkout), None once paid, for the refusal to name holds apart, and whether it has
    been started (a move's new time never is), for it to name those begun apart."""
    return _live_bookings(IndividualBooking.clinic_id == clinic_id, start, end, now)


@busy.service_source("bookings")
def live_bookings_of_service(service_id, start, end, now):
    """The live bookings of a service overlapping ``[start, end)``, as
    :func:`live_bookings_at_clinic` gives a clinic's: what a change of the service that
    would strand them (its deactivation, its mode, a provider taken from it) is refused
    over (``catalog.service_changes``). A move keeps its service."""
    return _live_bookings(IndividualBooking.service_id == service_id, start, end, now)


def _live_bookings(which, start, end, now):
    """The rows of the live bookings ``which`` (a condition on ``IndividualBooking``), as a
    ``busy.clinic_source`` returns them."""
    bookings = (
        sa.select(
            sa.literal(False),
            IndividualBooking.id,
            booking_providers.c.provider_id,
            IndividualBooking.start_at,
            IndividualBooking.end_at,
            MasterBooking.number,
            MasterBooking.id,
            unpaid_hold_lapses(),
            IndividualBooking.status == BookingStatus.STARTED,
        )
        .join(IndividualBooking, IndividualBooking.id == booking_providers.c.booking_id)
        .join(MasterBooking, MasterBooking.id == IndividualBooking.master_id)
        .where(
            which,
            IndividualBooking.status.in_(LIVE_ITEM_STATUSES),
            IndividualBooking.start_at < end,
            IndividualBooking.end_at > start,
            hold_still_active(now),
        )
    )
    held = (
        held_move_claims(
            now,
            sa.literal(True),
            IndividualBooking.id,
            booking_providers.c.provider_id,
            SlotClaim.start_at,
            SlotClaim.end_at,
            MasterBooking.number,
            MasterBooking.id,
            Reschedule.expires_at,
            sa.false(),
            start=start,
            end=end,
            each_provider=True,
        )
        .join(IndividualBooking, IndividualBooking.id == SlotClaim.booking_id)
        .join(MasterBooking, MasterBooking.id == IndividualBooking.master_id)
        .where(which)
    )
    return [
        (key, provider_id, s, e, number or f"V{visit_id:06d}", bool(moving), lapses_at, started)
        for moving, key, provider_id, s, e, number, visit_id, lapses_at, started in (
            db.session.execute(sa.union_all(bookings, held))
        )
    ]
