"""What every catalog use case shares: who may act, loading rows, cleaning form values,
and the unit of work that turns a lost unique constraint into a field message.

Conventions (those of ``portal.accounts.service``): the acting user is passed explicitly;
each mutating use case validates, changes and writes its audit row in one unit of work; a
broken rule raises ``ValidationError({field: message})`` (``FORM`` for the whole form) and
nothing is written; a missing object (or another provider's row) raises ``NotFound``; a
role that may not act raises ``PermissionDenied``.

Lock order (PostgreSQL). Every catalog edit takes its locks in one order, so two edits at
once, or an edit and a hold, only ever wait for each other, never deadlock:

0. A write of a provider's PAN only: the payouts' locks of that provider and of its PANs
   (``events.provider_pan_writing``, ``pan.wait_for_payouts``), before everything else:
   it waits for a payout being made, or a fund account being saved (seconds, at RazorpayX),
   holding none of the catalog's locks, and nothing holding those locks takes the
   catalog's.
1. the ``catalog_version`` row (``cache.lock_stamp``), first of all: :func:`changing` takes
   it as the use case begins, and so does the account's deactivation of a provider's
   profile (``providers._deactivate_with_account``). Every flush that writes a catalog row
   updates that row (the cache's stamp), so an edit that took it only at its first flush
   held its row locks while it waited for it, and another edit held it while it waited
   for those rows. Taken first, it lets one catalog edit at a time past this point.
2. the edited row (:func:`lock_for_edit`, ``FOR NO KEY UPDATE``), then the rows the edit
   writes through links: a provider's or service's linked rows (``bump_versions``), the
   link rows. No one else writes them without step 1 first. ``FOR NO KEY UPDATE``, not
   ``FOR UPDATE``: a row inserted meanwhile that refers to the edited one (a leave, a
   weekly window, a link, a hold's booking) takes ``FOR KEY SHARE`` on it for its foreign
   key, which ``FOR NO KEY UPDATE`` lets through and ``FOR UPDATE`` queued behind the
   edit; with the lock on the provider's time taken by the inserter first, that was a
   deadlock.
3. the lock on the provider's time (``time_lock.lock_provider``), last: a hold takes it
   and then inserts rows referring to catalog rows (step 2 lets it through), never the
   ``catalog_version`` row. A clinic's edit that could leave bookings out (a deactivation,
   new opening hours or time zone: ``clinics.update_clinic``) takes, after the clinic's
   row, the lock of every provider with weekly hours or bookings ahead at the clinic, in
   one statement, in a hold's order (``time_lock.lock_providers``: subjects sorted as
   ``claims.lock_subjects`` sorts a team's), so it never waits in a circle with a team's
   hold. A service's change that could strand its bookings (a deactivation, its mode, a
   provider taken from it: ``service_changes.refusal``) does the same for every provider
   offering it or booked for it; the claims' trigger reads the service after that lock.
   Just before it, such a change (and a provider's deactivation, leave or weekly hours:
   :func:`release_stale_then_lock`) locks the stale holds in its way, their visits, then
   their moves: a hold locks its visit before the lock on a provider's time, so visits
   after that lock could wait in a circle with it. It releases them after that lock
   (``busy.release_stale_of_providers``' ``lock``): expiring a visit posts its wallet part
   back, and the money comes after the time, as in every use case (posted before it, it
   waited in a circle with that patient's wallet move, which holds the time and waits for
   the wallet: docs/booking.md, "One lock order for a booking's money").

A receiver running inside another module's unit of work (the account's deactivation) takes
the same order after that module's own locks (the user's row, ``FOR NO KEY UPDATE``).
SQLite (embedded, one process): its writers take turns, and ``time_lock.serialized`` (or
``hold_to_end``) holds the process lock from the check to the commit."""

from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

import sqlalchemy as sa

from portal.accounts.models import ADMIN, PROVIDER
from portal.accounts.service import FORM, NotFound, PermissionDenied, ValidationError
from portal.catalog import busy, cache, time_lock
from portal.catalog.models import Provider
from portal.db import unit_of_work, utcnow
from portal.domain.cancellation import provider_may_cancel
from portal.domain.names import NAME_NEEDS_LETTER, has_letter
from portal.domain.text import DateText, PluralText, Text
from portal.extensions import db
from portal.i18n import N_, Nn_

__all__ = [
    "FORM",
    "NotFound",
    "PermissionDenied",
    "ValidationError",
    "changing",
    "require_admin",
    "load",
    "provider_for_actor",
    "clean_text",
    "choice",
    "bounded_int",
    "raise_errors",
    "rows_by_id",
    "snapshot",
    "StaleEdit",
    "lock_for_edit",
    "bump_versions",
]

MSG_CONFLICT = N_("That conflicts with an existing entry.")


@contextmanager
def changing(unique_errors=None, before=None):
    """One catalog use case's unit of work, its first lock the catalog's
    (``cache.lock_stamp``: the lock order above); a unique constraint lost to a concurrent
    request becomes a ``ValidationError`` with ``unique_errors`` (nothing is written).
    ``before``: called first in the unit of work, before that lock (step 0 above)."""
    try:
        with unit_of_work():
            if before is not None:
                before()
            cache.lock_stamp()
            yield
    except sa.exc.IntegrityError:
        raise ValidationError(unique_errors or {FORM: MSG_CONFLICT}) from None


def require_admin(actor):
    if getattr(actor, "role", None) != ADMIN:
        raise PermissionDenied("Only administrators can change the catalog.")


def load(model, obj_or_id, what):
    if isinstance(obj_or_id, model):
        return obj_or_id
    obj = db.session.get(model, obj_or_id) if obj_or_id is not None else None
    if obj is None:
        raise NotFound(what)
    return obj


def provider_for_actor(actor, provider_or_id):
    """The provider row if the actor is an admin or that provider's own user; another
    provider's row is reported as missing, never as forbidden."""
    provider = load(Provider, provider_or_id, "provider")
    role = getattr(actor, "role", None)
    if role == ADMIN:
        return provider
    if role == PROVIDER and provider.user_id == actor.id:
        return provider
    raise NotFound("provider")


def clean_text(value, field_name, errors, what, max_length, required=True):
    value = " ".join((value or "").split())
    if required and not value:
        errors[field_name] = f"Enter {what}."
    elif len(value) > max_length:
        errors[field_name] = f"Use at most {max_length} characters."
    return value


def clean_name(value, field_name, errors, what, max_length):
    """``clean_text`` for a name patients read (a clinic's, its city's, a service's, a
    specialization's, a provider's): it also needs a letter (``domain.names``)."""
    value = clean_text(value, field_name, errors, what, max_length)
    if value and field_name not in errors and not has_letter(value):
        errors[field_name] = NAME_NEEDS_LETTER
    return value


def choice(value, choices, field_name, errors, what):
    if value not in choices:
        errors[field_name] = f"Choose {what}."
    return value


def bounded_int(value, field_name, errors, low, high, message):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors[field_name] = message
    return value


# How far ahead a change that takes a provider's time away (a deactivation, a change of
# weekly hours, a clinic's hours) looks for bookings in its way: any booking. No booking
# is made beyond the horizon (domain.slots.BOOK_DAYS_AHEAD, 96 days), so ten years is far
# more than any booking made since; the margin is for those made before the horizon
# existed (a crafted start up to 2099 was accepted) and leaves the bound nothing to miss
# should the horizon grow (tests/booking/test_booking_horizon.py: ten times it or more).
AHEAD = timedelta(days=3660)
# How many bookings a refusal names one by one (``listed``); it counts them all.
LISTED = 3

# Leave, a deactivation or a change of weekly hours over the provider's bookings: one
# message for one booking, one for several (the provider reads them in their language).
MSG_LEAVE_OVER_ONE = N_(
    "There is 1 booking with this provider in this period, on %(first)s. Cancel or move it "
    "first (a cancelled patient is refunded in full), then add the leave."
)
MSG_LEAVE_OVER_MANY = N_(
    "There are %(count)s bookings with this provider in this period, the first on "
    "%(first)s. Cancel or move them first (a cancelled patient is refunded in full), then "
    "add the leave."
)
# A move keeps its provider and clinic, so only a cancellation clears the way of a
# deactivation, or of a clinic taken from the provider (review finding: they said "Cancel
# or move", and a booking moved to another time was still in the way).
MSG_DEACTIVATE_OVER_ONE = N_(
    "There is 1 booking with this provider ahead, on %(first)s. Cancel it first (the "
    "patient is refunded in full; moving it would keep this provider), then deactivate the "
    "provider."
)
MSG_DEACTIVATE_OVER_MANY = N_(
    "There are %(count)s bookings with this provider ahead, the first on %(first)s. Cancel "
    "them first (each patient is refunded in full; moving them would keep this provider), "
    "then deactivate the provider."
)

MSG_HOURS_OVER_ONE = N_(
    "There is 1 booking with this provider in the hours being removed, on %(first)s. Cancel "
    "or move it first (a cancelled patient is refunded in full), then change the hours."
)
# ``listed`` sits in brackets: it may end with "…", and "…." ("…।" in Hindi) read twice.
MSG_HOURS_OVER_MANY = N_(
    "There are %(count)s bookings with this provider in the hours being removed "
    "(%(listed)s). Cancel or move them first (a cancelled patient is refunded in full), "
    "then change the hours."
)
# A clinic taken from the provider: their weekly hours there go with it, refused as a change
# of hours is, in its own words (no hours are being changed on that form).
MSG_CLINIC_OVER_ONE = N_(
    "There is 1 booking ahead with this provider at %(clinic)s, on %(first)s. Cancel it "
    "first (the patient is refunded in full; moving it would keep this provider and "
    "clinic), then remove the clinic."
)
MSG_CLINIC_OVER_MANY = N_(
    "There are %(count)s bookings ahead with this provider at %(clinic)s (%(listed)s). "
    "Cancel them first (each patient is refunded in full; moving them would keep this "
    "provider and clinic), then remove the clinic."
)

# The same refusals as the provider reads them on their own page: they cannot move a
# booking (the clinic can) and pay the policy's penalty for each they cancel (review: the
# admin's words told them to "cancel or move" it, "a cancelled patient is refunded in
# full"). ``%(penalty)s``: the penalty in force (``own_words``).
MSG_YOUR_LEAVE_OVER_ONE = N_(
    "You have 1 appointment in this period, on %(first)s. Ask the clinic to move it, or "
    "cancel it from your schedule (it costs you a cancellation penalty, shown on the cancel "
    "page before you confirm)."
)
MSG_YOUR_LEAVE_OVER_MANY = N_(
    "You have %(count)s appointments in this period (%(listed)s). Ask the clinic to move "
    "them, or cancel them from your schedule (each costs you a cancellation penalty, shown "
    "on the cancel page before you confirm)."
)
MSG_YOUR_HOURS_OVER_ONE = N_(
    "You have 1 appointment in the hours being removed, on %(first)s. Ask the clinic to "
    "move it, or cancel it from your schedule (it costs you a cancellation penalty, shown on "
    "the cancel page before you confirm)."
)
MSG_YOUR_HOURS_OVER_MANY = N_(
    "You have %(count)s appointments in the hours being removed (%(listed)s). Ask the "
    "clinic to move them, or cancel them from your schedule (each costs you a "
    "cancellation penalty, shown on the cancel page before you confirm)."
)

# Appointments in the way that have already begun (started, or their time come): the
# doctor may no longer cancel them (``domain.cancellation``: only before the start) nor the
# clinic move them, so "ask the clinic to move them, or cancel them" cannot be followed
# (review: a started appointment has no Cancel link). Named apart, with what can be done:
# complete it, or start the leave (change the hours) after it ends; one the patient never
# came to is the clinic's to cancel (a doctor completing it would earn on a no-show).
# Alone, or after the refusal of those ahead (``%(refusal)s``: "1 more"), so the counts add
# up to the schedule's.
MSG_YOUR_LEAVE_BEGUN = Nn_(
    "You have 1 appointment in this period that has already begun (%(listed)s), too late to "
    "cancel or move: complete it first (if the patient never came, ask the clinic to cancel "
    "it), or start your leave after it ends.",
    "You have %(num)s appointments in this period that have already begun (%(listed)s), too "
    "late to cancel or move: complete them first (if a patient never came, ask the clinic to "
    "cancel that one), or start your leave after they end.",
)
MSG_YOUR_LEAVE_ALSO_BEGUN = Nn_(
    "%(refusal)s 1 more has already begun (%(listed)s), too late to cancel or move: "
    "complete it first (if the patient never came, ask the clinic to cancel it), or start "
    "your leave after it ends.",
    "%(refusal)s %(num)s more have already begun (%(listed)s), too late to cancel or move: "
    "complete them first (if a patient never came, ask the clinic to cancel that one), or "
    "start your leave after they end.",
)
MSG_YOUR_HOURS_BEGUN = Nn_(
    "You have 1 appointment in the hours being removed that has already begun (%(listed)s), "
    "too late to cancel or move: complete it first (if the patient never came, ask the "
    "clinic to cancel it), or change the hours after it ends.",
    "You have %(num)s appointments in the hours being removed that have already begun "
    "(%(listed)s), too late to cancel or move: complete them first (if a patient never "
    "came, ask the clinic to cancel that one), or change the hours after they end.",
)
MSG_YOUR_HOURS_ALSO_BEGUN = Nn_(
    "%(refusal)s 1 more has already begun (%(listed)s), too late to cancel or move: "
    "complete it first (if the patient never came, ask the clinic to cancel it), or change "
    "the hours after it ends.",
    "%(refusal)s %(num)s more have already begun (%(listed)s), too late to cancel or move: "
    "complete them first (if a patient never came, ask the clinic to cancel that one), or "
    "change the hours after they end.",
)


def admin_begun(where, then, whose="with this provider"):
    """The admin's words for bookings in the way that have already begun (``Refusal``'s
    ``begun`` and ``also_begun`` pairs): no one may move them any more (a reschedule only
    before the start) nor cancel a started one (``STARTED -> CANCELLED`` is refused), so
    "cancel or move" cannot be followed (review finding; the doctor's own words above).
    What an admin can do on the visit's page: complete it, or cancel one the patient never
    came to (its time come, never started); or make the change
    (``then``) after it ends. ``where``: which bookings ("in this period"); ``whose``: whose
    they are (a clinic's refusals, ``catalog.clinics``: "at this clinic"). Admin pages are
    English (not marked for the catalogue)."""
    one = (
        "too late to move: complete it first (or, if the patient never came, cancel it) on "
        f"its visit's page, or {then} after it ends."
    )
    many = (
        "too late to move: complete them first (or cancel any the patient never came to) "
        f"on their visits' pages, or {then} after they end."
    )
    whose = " ".join(filter(None, (whose, where)))
    begun = (
        f"There is 1 booking {whose} that has already begun (%(listed)s), {one}",
        f"There are %(num)s bookings {whose} that have already begun (%(listed)s), {many}",
    )
    also = (
        f"%(refusal)s 1 more has already begun (%(listed)s), {one}",
        f"%(refusal)s %(num)s more have already begun (%(listed)s), {many}",
    )
    return begun, also


# Unpaid holds in the way (a patient paying for a time; a move's new time while its fee is
# paid): greyed on the provider's schedule ("Awaiting payment — held until …"), nothing to
# cancel: each lapses by itself unless paid. Named apart from the bookings, after their
# refusal (``%(refusal)s``; an admin's words, or the provider's own: ``MSG_YOUR_ALSO_HOLDS``),
# or alone when only holds are in the way (``*_HELD``: try again once they lapse). They
# still refuse the change: a hold paid for is a booking. ``%(lapses)s``: when the last of
# them lapses. (Review finding: they were said to be "not on the schedule".)
MSG_ALSO_HOLDS = Nn_(
    "%(refusal)s There is also 1 time held while a patient pays, greyed on the provider's "
    "schedule; it lapses by itself at %(lapses)s unless paid.",
    "%(refusal)s There are also %(num)s times held while patients pay, greyed on the "
    "provider's schedule; each lapses by itself unless paid, the last at %(lapses)s.",
)
MSG_YOUR_ALSO_HOLDS = Nn_(
    "%(refusal)s There is also 1 time held while a patient pays, greyed on your schedule; "
    "it lapses by itself at %(lapses)s unless paid.",
    "%(refusal)s There are also %(num)s times held while patients pay, greyed on your "
    "schedule; each lapses by itself unless paid, the last at %(lapses)s.",
)
MSG_LEAVE_HELD = Nn_(
    "1 patient is paying for a time in this period; the hold lapses at %(lapses)s. Try "
    "again after it.",
    "%(num)s times in this period are held while they are paid for; the last hold lapses "
    "at %(lapses)s. Try again after it.",
)
MSG_DEACTIVATE_HELD = Nn_(
    "1 patient is paying for a time with this provider ahead; the hold lapses at "
    "%(lapses)s. Try again after it.",
    "%(num)s times with this provider ahead are held while they are paid for; the last hold "
    "lapses at %(lapses)s. Try again after it.",
)
MSG_HOURS_HELD = Nn_(
    "1 patient is paying for a time in the hours being removed; the hold lapses at "
    "%(lapses)s. Try again after it.",
    "%(num)s times in the hours being removed are held while they are paid for; the last "
    "hold lapses at %(lapses)s. Try again after it.",
)
MSG_CLINIC_HELD = Nn_(
    "1 patient is paying for a time ahead with this provider at %(clinic)s; the hold "
    "lapses at %(lapses)s. Try again after it.",
    "%(num)s times ahead with this provider at %(clinic)s are held while they are paid "
    "for; the last hold lapses at %(lapses)s. Try again after it.",
)


class Refusal(NamedTuple):
    """A change's words for what is in its way: one booking, several (``%(count)s``), only
    unpaid holds, and holds after the bookings (``Nn_`` pairs); bookings already begun
    alone and after those ahead (``Nn_`` pairs; None: counted with the others)."""

    one: str
    many: str
    held: tuple
    also: tuple = MSG_ALSO_HOLDS
    begun: tuple | None = None
    also_begun: tuple | None = None


LEAVE_OVER = Refusal(
    MSG_LEAVE_OVER_ONE,
    MSG_LEAVE_OVER_MANY,
    MSG_LEAVE_HELD,
    MSG_ALSO_HOLDS,
    *admin_begun("in this period", "start the leave"),
)
DEACTIVATE_OVER = Refusal(
    MSG_DEACTIVATE_OVER_ONE,
    MSG_DEACTIVATE_OVER_MANY,
    MSG_DEACTIVATE_HELD,
    MSG_ALSO_HOLDS,
    # Begun, so not "ahead": said of the provider alone.
    *admin_begun("", "deactivate the provider"),
)
HOURS_OVER = Refusal(
    MSG_HOURS_OVER_ONE,
    MSG_HOURS_OVER_MANY,
    MSG_HOURS_HELD,
    MSG_ALSO_HOLDS,
    *admin_begun("in the hours being removed", "change the hours"),
)
CLINIC_OVER = Refusal(
    MSG_CLINIC_OVER_ONE,
    MSG_CLINIC_OVER_MANY,
    MSG_CLINIC_HELD,
    MSG_ALSO_HOLDS,
    *admin_begun("at %(clinic)s", "remove the clinic"),
)
# An admin's words -> the provider's own (only holds in the way: the words suit both).
YOURS = {
    LEAVE_OVER: Refusal(
        MSG_YOUR_LEAVE_OVER_ONE,
        MSG_YOUR_LEAVE_OVER_MANY,
        MSG_LEAVE_HELD,
        MSG_YOUR_ALSO_HOLDS,
        MSG_YOUR_LEAVE_BEGUN,
        MSG_YOUR_LEAVE_ALSO_BEGUN,
    ),
    HOURS_OVER: Refusal(
        MSG_YOUR_HOURS_OVER_ONE,
        MSG_YOUR_HOURS_OVER_MANY,
        MSG_HOURS_HELD,
        MSG_YOUR_ALSO_HOLDS,
        MSG_YOUR_HOURS_BEGUN,
        MSG_YOUR_HOURS_ALSO_BEGUN,
    ),
}


def own_words(actor, messages):
    """``(messages, values)`` for a refusal as ``actor`` reads it: the provider themselves
    their own words (``YOURS``), anyone else (an admin) ``messages`` as they are. The
    penalty is not named: each booking is charged its own policy version's
    (``refunds.cancel``), which the cancel page states before the doctor confirms; the
    policy in force now may say another amount (re-read finding)."""
    if getattr(actor, "role", None) != PROVIDER or messages not in YOURS:
        return messages, {}
    return YOURS[messages], {}


# A time as the refusals here and in catalog.clinics name it: "Mon 07 Dec 2026, 10:30".
WHEN = "%a %d %b %Y, %H:%M"


def lapse_text(lapses_at, zone, now=None):
    """When a hold lapses, in ``zone``: the time alone on the day it is now there
    ("10:39"), else with its date."""
    local = lapses_at.astimezone(zone)
    today = (now or utcnow()).astimezone(zone).date()
    return DateText(local.strftime("%H:%M" if local.date() == today else WHEN))


def release_stale_then_lock(provider, starts_at, ends_at):
    """Before a provider's change reads the bookings in its way: lock their holds there
    whose time ran out but which the sweep has not reached, take the lock on the
    provider's time, then release them (``busy.release_stale_of_providers``: a capture
    would still have confirmed them; their money after the lock on the time). Returns the
    ``now`` the holds were judged at, for :func:`bookings_in_the_way` to read them live at
    (so none is neither released nor counted)."""
    now = utcnow()
    busy.release_stale_of_providers(
        [provider.id], starts_at, ends_at, now, lambda: time_lock.lock_provider(provider.id)
    )
    return now


def bookings_in_the_way(provider, starts_at, ends_at, messages, only=None, now=None, **extra):
    """The message (``messages``: a :class:`Refusal`) refusing a change that would leave
    the provider's live bookings or unpaid holds between ``starts_at`` and ``ends_at``
    (aware; times said in ``starts_at``'s zone) without their provider, or None;
    ``only(start, end)`` picks the times that count (those in the hours a change removes).
    A booking is counted as the provider's schedule shows it: each patient must first be
    told, by a cancellation (a full refund) or a move. An unpaid hold is only greyed on the
    schedule and lapses by itself: it is named apart with when the last one lapses
    (``messages.also``), or alone (``messages.held``: try again then); it still refuses
    the change, as it may yet be paid. A booking already begun (:func:`has_begun`) is named
    apart when ``messages`` has words for it (``messages.begun``, or ``messages.also_begun``
    after those ahead); the counts together are the schedule's. The message's values:
    ``count``, ``first`` (the first booking's time), ``listed`` (the first ``LISTED``, "…"
    after them when there are more), ``lapses`` and any ``extra`` (such as ``clinic``).
    ``now``: the time the holds are live at (:func:`release_stale_then_lock`'s), and the
    bookings begun by. One query, whatever is found."""
    now = now or utcnow()
    taken = busy.busy_spans([provider.id], starts_at, ends_at, now=now)[provider.id]
    if only is not None:
        taken = [b for b in taken if only(b.start, b.end)]
    booked = [b for b in taken if not b.hold]
    held = [b for b in taken if b.hold]
    begun = [b for b in booked if messages.begun and has_begun(b, now)]
    ahead = [b for b in booked if not (messages.begun and has_begun(b, now))]
    zone = starts_at.tzinfo
    if held:
        lapses = lapse_text(max(b.lapses_at for b in held), zone, now)
        if not booked:
            return PluralText(*messages.held, len(held), lapses=lapses, **extra)
    if not booked:
        return None
    refusal = None
    if ahead:
        values = {"first": DateText(_when(ahead[0], zone)), "listed": _listed(ahead, zone)}
        if len(ahead) == 1:
            refusal = Text(messages.one, **values, **extra)
        else:
            refusal = Text(messages.many, count=len(ahead), **values, **extra)
    if begun:
        listed = _listed(begun, zone)
        if refusal is None:
            refusal = PluralText(*messages.begun, len(begun), listed=listed, **extra)
        else:
            refusal = PluralText(*messages.also_begun, len(begun), refusal=refusal, listed=listed)
    if not held:
        return refusal
    return PluralText(*messages.also, len(held), refusal=refusal, lapses=lapses)


def has_begun(span, now):
    """A booking that can no longer be moved, nor cancelled by its doctor: started (perhaps
    early), or its time come (a doctor cancels only before the start,
    ``domain.cancellation``; an admin may still cancel one never started)."""
    return span.started or not provider_may_cancel(span.start - now)


def _when(span, zone):
    return span.start.astimezone(zone).strftime(WHEN)


def _listed(spans, zone):
    """The first ``LISTED`` times, "…" after them when there are more."""
    times = [_when(b, zone) for b in spans[:LISTED]]
    return DateText("; ".join(times) + ("; …" if len(spans) > LISTED else ""))


def raise_errors(errors):
    """Refuse the use case (its unit of work rolls back) when any field has a message."""
    if errors:
        raise ValidationError(errors)


def rows_by_id(model, ids, field_name, errors, what):
    try:
        ids = [int(i) for i in (ids or ())]
    except (TypeError, ValueError):
        errors[field_name] = f"Choose {what} from the list."
        return []
    if not ids:
        return []
    rows = db.session.scalars(sa.select(model).where(model.id.in_(ids))).all()
    if len(rows) != len(set(ids)):
        errors[field_name] = f"Choose {what} from the list."
    return rows


def snapshot(obj, *names):
    out = {}
    for name in names:
        value = getattr(obj, name)
        out[name] = value.isoformat() if isinstance(value, (time, date, datetime)) else value
    return out


# --- edit forms built on a version ---------------------------------------------------------

MSG_STALE = (
    "This {what} was changed by another administrator since the form was opened, so it was "
    "not saved (saving would have put back what they changed). The form now shows the "
    "{what} as it is: make your change again."
)


class StaleEdit(ValidationError):
    """An edit built on an older version of the row than the one stored: nothing is written;
    the caller shows the row as it is now (``MSG_STALE``)."""

    def __init__(self, what):
        super().__init__({FORM: MSG_STALE.format(what=what)})


def lock_for_edit(model, obj_or_id, what, base_version=None):
    """The row read afresh and locked (``FOR NO KEY UPDATE`` on PostgreSQL: a row inserted
    meanwhile that refers to it is not held up, see "Lock order" above; SQLite serialises
    its writers, under ``time_lock.serialized`` in the use cases) for an admin's edit. A
    catalog row: after the catalog's lock (:func:`changing` takes it), before the lock on
    the provider's time.
    ``base_version``: the ``version`` the edit form was filled from; another one (an
    admin's change committed since) raises :class:`StaleEdit`. None (a caller without a
    form): not checked."""
    row_id = obj_or_id.id if isinstance(obj_or_id, model) else obj_or_id
    query = sa.select(model).where(model.id == row_id).execution_options(populate_existing=True)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=model, key_share=True)
    row = db.session.scalar(query) if row_id is not None else None
    if row is None:
        raise NotFound(what)
    if base_version is not None and row.version != base_version:
        raise StaleEdit(what)
    return row


def bump_versions(rows):
    """A change an edit form of these rows shows: raise each one's ``version`` (in SQL,
    ``version + 1``, so two changes at once both count)."""
    for row in rows:
        row.version = type(row).version + 1
