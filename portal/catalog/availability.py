"""A provider's weekly hours at each clinic and their leave (the provider for themselves,
or an admin)."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from portal.audit.service import record
from portal.catalog import time_lock
from portal.catalog.checks import (
    AHEAD,
    FORM,
    HOURS_OVER,
    LEAVE_OVER,
    NotFound,
    bookings_in_the_way,
    changing,
    clean_text,
    load,
    own_words,
    provider_for_actor,
    raise_errors,
    release_stale_then_lock,
)
from portal.catalog.models import WEEKDAYS, Availability, Clinic, Leave
from portal.db import utcnow
from portal.domain.slots import within_weekly_hours
from portal.domain.text import DateText, Text
from portal.extensions import db
from portal.i18n import N_

MAX_LEAVE = timedelta(days=366)

# The doctor's hours and leave refusals, said on their page in their language
# (docs/i18n.md); a day's name is a Text inside the message, translated with it.
MSG_CHOOSE_DAY = N_("Choose a day.")
MSG_ENTER_TIMES = N_("Enter the start and end times.")
MSG_END_AFTER_START = N_("End after the start.")
MSG_NOT_THEIR_CLINIC = N_("Choose one of the provider's clinics.")
MSG_CLOSED_ON = N_("%(clinic)s is closed on %(days)s.")
MSG_OPEN_ON = N_("%(clinic)s is open %(hours)s on %(days)s.")
# A window written meanwhile with the same day and start (the unique constraint).
MSG_STARTS_THEN = N_("You already have hours starting then on that day.")
MSG_OVERLAPS = N_("Overlaps %(day)s %(hours)s.")
MSG_OVERLAPS_AT = N_("Overlaps %(day)s %(hours)s at %(clinic)s.")
MSG_LEAVE_TIMES = N_("Enter when the leave starts and ends.")
MSG_LEAVE_PAST = N_("Leave must end in the future.")
MSG_LEAVE_TOO_LONG = N_("Leave can last at most a year; add another for longer.")
MSG_LEAVE_OVERLAPS = N_("This overlaps the leave already added from %(starts)s to %(ends)s.")
# A window the clinic's opening hours (changed by an admin since) cut short, on the page.
MSG_BOOKABLE_ONLY = N_("Outside %(clinic)s's hours: patients can book %(hours)s only.")
MSG_NOT_BOOKABLE = N_("Outside %(clinic)s's hours: patients cannot book these hours.")
WEEKDAYS_PLURAL = (
    N_("Mondays"), N_("Tuesdays"), N_("Wednesdays"), N_("Thursdays"), N_("Fridays"),
    N_("Saturdays"), N_("Sundays"),
)  # fmt: skip


def _window_errors(provider, clinic, weekday, start, end, others):
    """Messages for one weekly window; ``others`` are the provider's other windows."""
    if not isinstance(weekday, int) or not 0 <= weekday <= 6:
        return {"weekday": MSG_CHOOSE_DAY}
    if start is None or end is None:
        return {"start_time": MSG_ENTER_TIMES}
    if not start < end:
        return {"end_time": MSG_END_AFTER_START}
    if clinic.id not in {c.id for c in provider.clinics}:
        return {"clinic_id": MSG_NOT_THEIR_CLINIC}
    days = Text(WEEKDAYS_PLURAL[weekday])
    hours = clinic.business_hours().get(weekday)
    if hours is None:
        return {"weekday": Text(MSG_CLOSED_ON, clinic=clinic.name, days=days)}
    if start < hours[0] or end > hours[1]:
        return {
            "start_time": Text(MSG_OPEN_ON, clinic=clinic.name, hours=_hours(*hours), days=days)
        }
    for other in others:
        if other.weekday == weekday and other.start_time < end and start < other.end_time:
            values = {
                "day": Text(WEEKDAYS[weekday]),
                "hours": _hours(other.start_time, other.end_time),
            }
            if other.clinic_id == clinic.id:
                return {"start_time": Text(MSG_OVERLAPS, **values)}
            return {"start_time": Text(MSG_OVERLAPS_AT, clinic=other.clinic.name, **values)}
    return {}


def _hours(start, end):
    return f"{start:%H:%M}–{end:%H:%M}"


def bookable_part(start, end, opening):
    """What of a weekly window ``start``–``end`` patients can book, given the clinic's
    ``opening`` that day (``(opens, closes)``, None: closed): the free times lie in both
    (catalog.slots). ``(start, end)`` cut to the opening, or None when nothing is left.
    A window is checked against the hours when added, but an admin may change them later."""
    if opening is None:
        return None
    start, end = max(start, opening[0]), min(end, opening[1])
    return (start, end) if start < end else None


def outside_hours_notes(provider):
    """``{window id: message}`` for the provider's windows lying (partly) outside their
    clinic's opening hours; the clinics' hours come loaded with them (no query)."""
    clinics = {c.id: c for c in provider.clinics}
    notes = {}
    for w in provider.availability:
        clinic = clinics.get(w.clinic_id)
        if clinic is None:  # a former clinic: no longer bookable there at all
            continue
        part = bookable_part(w.start_time, w.end_time, clinic.business_hours().get(w.weekday))
        if part == (w.start_time, w.end_time):
            continue
        if part is None:
            notes[w.id] = Text(MSG_NOT_BOOKABLE, clinic=clinic.name)
        else:
            notes[w.id] = Text(MSG_BOOKABLE_ONLY, clinic=clinic.name, hours=_hours(*part))
    return notes


def _windows_locked(provider):
    """The provider's weekly windows, read after taking the lock on their time (as they
    are committed): of two changes of their hours at once (an add, an edit, a removal, a
    replacement), the second waits for the first's commit and checks against it. Without
    the lock two overlapping windows with different starts could both be added."""
    return _rows_locked(provider, Availability, "availability")


def _leaves_locked(provider):
    """The provider's leaves, read as committed after the lock on their time."""
    return _rows_locked(provider, Leave, "leaves")


def _rows_locked(provider, model, collection):
    time_lock.lock_provider(provider.id)
    rows = db.session.scalars(
        sa.select(model)
        .where(model.provider_id == provider.id)
        .order_by(model.id)
        .execution_options(populate_existing=True)
    ).all()
    # The provider's collection is these too: a removal or replacement through it then
    # deletes what is committed, not what an earlier read saw.
    set_committed_value(provider, collection, rows)
    return rows


def add_availability(actor, provider, clinic, weekday, start, end):
    """Add one weekly window (a provider for themselves, or an admin)."""
    with time_lock.serialized(), changing({"start_time": MSG_STARTS_THEN}):
        provider = provider_for_actor(actor, provider)
        clinic = load(Clinic, clinic, "clinic")
        windows = _windows_locked(provider)
        errors = _window_errors(provider, clinic, weekday, start, end, windows)
        raise_errors(errors)
        window = Availability(
            provider=provider, clinic=clinic, weekday=weekday, start_time=start, end_time=end
        )
        db.session.add(window)
        db.session.flush()
        record(
            actor,
            "availability.add",
            "provider",
            provider.id,
            after={
                "id": window.id,
                "clinic_id": clinic.id,
                "weekday": weekday,
                "start": start.isoformat(),
                "end": end.isoformat(),
            },
        )
        return window


def hours_in_the_way(provider, clinic, old, new, messages=HOURS_OVER, actor=None):
    """The refusal of changing the provider's weekly hours at ``clinic`` from the windows
    ``old`` to ``new`` while live bookings or holds ahead lie in the hours it removes
    (inside the old hours, not inside the new), or None: as for a leave, each patient must
    first be told, and unpaid holds there are named apart (``bookings_in_the_way``).
    ``messages``: its words (a ``checks.Refusal``; ``%(clinic)s`` names the clinic), as
    ``actor`` reads them (``checks.own_words``: the provider their own).
    Under the lock on the provider's time (the caller holds ``time_lock.serialized()``),
    so a hold at the same moment is read here, or its claim is refused for the new hours
    by the claims' trigger (catalog.time_lock)."""
    zone = ZoneInfo(clinic.timezone)

    def removed(start, end):
        return within_weekly_hours(start, end, zone, old) and not within_weekly_hours(
            start, end, zone, new
        )

    now = utcnow().astimezone(zone)
    at = release_stale_then_lock(provider, now, now + AHEAD)
    messages, values = own_words(actor, messages)
    return bookings_in_the_way(
        provider, now, now + AHEAD, messages, only=removed, now=at, clinic=clinic.name, **values
    )


def remove_availability(actor, window):
    """Remove one weekly window; refused over bookings ahead in it (``hours_in_the_way``)."""
    with time_lock.serialized(), changing():
        window = load(Availability, window, "availability")
        provider = provider_for_actor(actor, window.provider)
        windows = _windows_locked(provider)
        if window not in windows:  # removed meanwhile
            raise NotFound("availability")
        at_clinic = [w for w in windows if w.clinic_id == window.clinic_id]
        others = [w for w in at_clinic if w is not window]
        clash = hours_in_the_way(provider, window.clinic, at_clinic, others, actor=actor)
        if clash:
            raise_errors({FORM: clash})
        record(
            actor,
            "availability.remove",
            "provider",
            provider.id,
            before={
                "id": window.id,
                "clinic_id": window.clinic_id,
                "weekday": window.weekday,
                "start": window.start_time.isoformat(),
                "end": window.end_time.isoformat(),
            },
        )
        provider.availability.remove(window)


def change_availability(actor, window, start, end):
    """Change one weekly window's hours to ``start``–``end`` (its day and clinic stay):
    checked as an added window is (``_window_errors``, against the provider's other
    windows), and refused over bookings ahead in the hours it takes away
    (``hours_in_the_way``, under the lock on the provider's time, as a removal is); hours
    it only adds free time."""
    with time_lock.serialized(), changing({"start_time": MSG_STARTS_THEN}):
        window = load(Availability, window, "availability")
        provider = provider_for_actor(actor, window.provider)
        windows = _windows_locked(provider)
        if window not in windows:  # removed meanwhile
            raise NotFound("availability")
        others = [w for w in windows if w is not window]
        clinic = window.clinic
        raise_errors(_window_errors(provider, clinic, window.weekday, start, end, others))
        at_clinic = [w for w in windows if w.clinic_id == window.clinic_id]
        changed = [w for w in at_clinic if w is not window]
        changed.append((window.weekday, start, end))
        clash = hours_in_the_way(provider, clinic, at_clinic, changed, actor=actor)
        if clash:
            raise_errors({FORM: clash})
        before = {"start": window.start_time.isoformat(), "end": window.end_time.isoformat()}
        window.start_time, window.end_time = start, end
        db.session.flush()
        record(
            actor,
            "availability.change",
            "provider",
            provider.id,
            before={"id": window.id, **before},
            after={
                "id": window.id,
                "clinic_id": window.clinic_id,
                "weekday": window.weekday,
                "start": start.isoformat(),
                "end": end.isoformat(),
            },
        )
        return window


def set_availability(actor, provider, clinic, windows):
    """Replace the provider's weekly hours at ``clinic`` with ``windows`` =
    ``[(weekday, start, end), …]``; errors are keyed ``window_<index>``, and hours removed
    over bookings ahead are refused (``FORM``: ``hours_in_the_way``)."""
    with time_lock.serialized(), changing():
        provider = provider_for_actor(actor, provider)
        clinic = load(Clinic, clinic, "clinic")
        current = _windows_locked(provider)
        keep = [w for w in current if w.clinic_id != clinic.id]
        errors, new = {}, []
        for index, (weekday, start, end) in enumerate(windows):
            problem = _window_errors(provider, clinic, weekday, start, end, keep + new)
            if problem:
                errors[f"window_{index}"] = next(iter(problem.values()))
                continue
            new.append(Availability(clinic=clinic, weekday=weekday, start_time=start, end_time=end))
        raise_errors(errors)
        old = [w for w in current if w.clinic_id == clinic.id]
        clash = hours_in_the_way(provider, clinic, old, new, actor=actor)
        if clash:
            raise_errors({FORM: clash})
        before = [_window_snapshot(w) for w in old]
        # The old windows go first: the unit of work inserts before it deletes, and a new
        # window starting when an old one did would meet the unique (weekday, start).
        provider.availability = keep
        db.session.flush()
        provider.availability = keep + new
        db.session.flush()
        record(
            actor,
            "availability.set",
            "provider",
            provider.id,
            before={"clinic_id": clinic.id, "windows": before},
            after={"clinic_id": clinic.id, "windows": [_window_snapshot(w) for w in new]},
        )
        return new


def _window_snapshot(w):
    return [w.weekday, w.start_time.strftime("%H:%M"), w.end_time.strftime("%H:%M")]


def _leave_in_the_way(provider, starts_at, ends_at):
    """The message refusing a leave over another of the provider's leaves (the earliest
    named, in ``starts_at``'s zone), or None. Half-open periods: a leave ending when the
    other starts does not overlap it. Read after the lock on the provider's time, so of
    two overlapping leaves at once the second reads the first's commit."""
    other = db.session.scalars(
        sa.select(Leave)
        .where(
            Leave.provider_id == provider.id,
            Leave.starts_at < ends_at,
            Leave.ends_at > starts_at,
        )
        .order_by(Leave.starts_at, Leave.id)
        .limit(1)
    ).first()
    if other is None:
        return None
    zone = starts_at.tzinfo

    def said(moment):
        return DateText(moment.astimezone(zone).strftime("%a %d %b %Y, %H:%M"))

    return Text(MSG_LEAVE_OVERLAPS, starts=said(other.starts_at), ends=said(other.ends_at))


def add_leave(actor, provider, starts_at, ends_at, reason=""):
    """Block a period (aware datetimes). A period holding the provider's bookings or holds
    is refused: each patient must first be told, by cancelling (a full refund) or moving
    their booking, so that no one comes to an absent provider (docs/booking.md). So is a
    period over another of the provider's leaves (``_leave_in_the_way``). Under the lock
    on the provider's time, so that a hold or another leave at the same moment is either
    read here or refused for this leave (catalog.time_lock)."""
    with time_lock.serialized(), changing():
        provider = provider_for_actor(actor, provider)
        errors = {}
        reason = clean_text(reason, "reason", errors, "a reason", 200, required=False)
        if starts_at is None or ends_at is None:
            errors["starts_at"] = MSG_LEAVE_TIMES
        elif starts_at.tzinfo is None or ends_at.tzinfo is None:
            raise ValueError("leave needs aware datetimes")
        elif not starts_at < ends_at:
            errors["ends_at"] = MSG_END_AFTER_START
        elif ends_at <= utcnow():
            errors["ends_at"] = MSG_LEAVE_PAST
        elif ends_at - starts_at > MAX_LEAVE:
            errors["ends_at"] = MSG_LEAVE_TOO_LONG
        else:
            at = release_stale_then_lock(provider, starts_at, ends_at)
            messages, values = own_words(actor, LEAVE_OVER)
            clash = _leave_in_the_way(provider, starts_at, ends_at) or bookings_in_the_way(
                provider, starts_at, ends_at, messages, now=at, **values
            )
            if clash:
                errors["starts_at"] = clash
        raise_errors(errors)
        leave = Leave(provider=provider, starts_at=starts_at, ends_at=ends_at, reason=reason)
        db.session.add(leave)
        db.session.flush()
        record(
            actor,
            "leave.add",
            "provider",
            provider.id,
            after={
                "id": leave.id,
                "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(),
                "reason": reason,
            },
        )
        return leave


def remove_leave(actor, leave):
    """Remove one leave, under the lock on the provider's time like every change of it: a
    leave another request removed meanwhile (a double click, a second tab) is NotFound,
    not an error, and is recorded once (review finding: the second removal was a 500)."""
    with time_lock.serialized(), changing():
        leave = load(Leave, leave, "leave")
        provider = provider_for_actor(actor, leave.provider)
        leaves = _leaves_locked(provider)
        if leave not in leaves:  # removed meanwhile
            raise NotFound("leave")
        record(
            actor,
            "leave.remove",
            "provider",
            provider.id,
            before={
                "id": leave.id,
                "starts_at": leave.starts_at.isoformat(),
                "ends_at": leave.ends_at.isoformat(),
                "reason": leave.reason,
            },
        )
        provider.leaves.remove(leave)
