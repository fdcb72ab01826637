"""Which providers' calendars a transaction changes, for the free-times cache.

Session events, so every use case that writes slot claims (hold, confirm, cancel, expire,
reschedule, late payments, the admin's actions) is covered without a line in it. After each
flush the providers whose busy times may have moved are noted on the session
(``catalog.calendar.note_write``); the outermost commit bumps their calendar versions
(after it, see ``portal.catalog.calendar`` for why, and for the listeners that do it), a
rollback forgets them.

What moves a provider's busy times (the ``bookings`` busy source in
``booking.claims``): a slot claim's insert, delete, or change of ``live``/time; a booking's
status or time; a visit's hold crossing the present (a lapsed hold renewed, or a live one
cut short); a reschedule's status or expiry (its held time). The providers come from what
is already loaded; when they are not loaded, every provider's versions are bumped (never
a query inside a flush). Bulk UPDATE/DELETE/INSERT statements on those tables bump every
provider too."""

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from portal.booking.models import (
    LIVE_ITEM_STATUSES,
    IndividualBooking,
    MasterBooking,
    Reschedule,
    SlotClaim,
    booking_providers,
)
from portal.catalog import calendar
from portal.db import utcnow
from portal.domain.states import BookingStatus

_FIELDS = {
    SlotClaim: ("subject", "live", "start_at", "end_at", "reschedule_id"),
    IndividualBooking: ("status", "start_at", "end_at"),
    Reschedule: ("status", "expires_at"),
}
TABLES = {m.__table__.name for m in (SlotClaim, IndividualBooking, MasterBooking, Reschedule)}
TABLES.add(booking_providers.name)
PROVIDER = "provider:"


def _changed(obj, names):
    state = sa.inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


def _booking_providers(booking):
    """The booking's provider ids from its loaded providers or claims, else None."""
    loaded = booking.__dict__
    if "providers" in loaded:
        return {p.id for p in loaded["providers"]}
    if "claims" in loaded:
        return {
            int(c.subject.removeprefix(PROVIDER))
            for c in loaded["claims"]
            if c.subject.startswith(PROVIDER)
        }
    return None


def _busy_may_move(item, now):
    """Whether an item's update may move its providers' busy times. A status change between
    two live statuses, its time unchanged, moves nothing, unless the item was a lapsed hold
    (not busy before, busy once paid late). Paying confirms every item of a visit: without
    this, each payment would bump every provider's versions."""
    state = sa.inspect(item)
    if not _changed(item, _FIELDS[IndividualBooking]):
        return False
    if _changed(item, ("start_at", "end_at")):
        return True
    history = state.attrs.status.history
    before = history.deleted[0] if history.deleted else None
    if before not in LIVE_ITEM_STATUSES or item.status not in LIVE_ITEM_STATUSES:
        return True
    if before != BookingStatus.SCHEDULED:
        return False
    # Its visit from the session's identity map (no query inside a flush).
    visit = state.session.identity_map.get(identity_key(MasterBooking, item.master_id))
    if visit is None or "hold_expires_at" in sa.inspect(visit).unloaded:
        return True  # not loaded: it may have been a lapsed hold
    hold = sa.inspect(visit).attrs.hold_expires_at.history
    was = hold.deleted[0] if hold.deleted else visit.hold_expires_at
    return was is not None and was <= now


def _visit_providers(visit):
    if "items" not in visit.__dict__:
        return None
    found = set()
    for item in visit.__dict__["items"]:
        ids = _booking_providers(item)
        if ids is None:
            return None
        found |= ids
    return found


def _hold_crosses_now(visit, now):
    """Busy while the hold has not lapsed: only a change across ``now`` moves a slot."""
    history = sa.inspect(visit).attrs.hold_expires_at.history
    if not history.has_changes():
        return False

    def lapsed(at):
        return at is not None and at <= now

    before = {lapsed(v) for v in history.deleted} or {False}
    after = {lapsed(v) for v in history.added} or {False}
    return before != after


def _providers(obj, is_new_or_deleted, now):
    """Provider ids whose calendar ``obj``'s write may change: a set, calendar.ALL, or
    an empty set (nothing that shows)."""
    if isinstance(obj, SlotClaim):
        if not is_new_or_deleted and not _changed(obj, _FIELDS[SlotClaim]):
            return set()
        # The patient's own claims do not show on a provider's free times.
        if obj.subject.startswith(PROVIDER):
            return {int(obj.subject.removeprefix(PROVIDER))}
        return set()
    if isinstance(obj, IndividualBooking):
        if not is_new_or_deleted and not _busy_may_move(obj, now):
            return set()
        ids = _booking_providers(obj)
        return calendar.ALL if ids is None else ids
    if isinstance(obj, MasterBooking):
        if is_new_or_deleted or not _hold_crosses_now(obj, now):
            return set()  # a new visit has no items yet; a deleted one's items say it
        ids = _visit_providers(obj)
        return calendar.ALL if ids is None else ids
    if isinstance(obj, Reschedule):
        if not is_new_or_deleted and not _changed(obj, _FIELDS[Reschedule]):
            return set()
        booking = obj.__dict__.get("booking")
        ids = _booking_providers(booking) if booking is not None else None
        return calendar.ALL if ids is None else ids
    return set()


_MODELS = (SlotClaim, IndividualBooking, MasterBooking, Reschedule)


@sa.event.listens_for(Session, "after_flush")
def _note_calendar_writes(session, flush_context):
    now = utcnow()
    found = set()
    for group, whole in ((session.new, True), (session.deleted, True), (session.dirty, False)):
        for obj in group:
            if not isinstance(obj, _MODELS):
                continue
            ids = _providers(obj, whole, now)
            if ids == calendar.ALL:
                calendar.note_write(session, calendar.ALL)
                return
            found |= ids
    if found:
        calendar.note_write(session, found)


@sa.event.listens_for(Session, "do_orm_execute")
def _note_bulk_writes(state):
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in TABLES:
        calendar.note_write(state.session, calendar.ALL)
