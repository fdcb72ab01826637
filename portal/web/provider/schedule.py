"""The provider's schedule: 14 days of appointments from ``?from=YYYY-MM-DD`` (today when
not given), paged Earlier / Later up to the booking horizon and back a year, with Start and
Complete, and the meeting link of an online one. A time held while a patient pays is
greyed: a new booking's (no name until paid), and a move's new time while its fee is paid
(``queries.HeldMove``: the patient named, where it comes from; the appointment's own row
says where it is moving).

Start/Complete and the link are POSTs (CSRF); with htmx only the appointment's row is
swapped, a plain request gets a 303 back to the page. Another provider's booking is a 404."""

from datetime import date, timedelta
from itertools import groupby
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from portal.booking import visits
from portal.booking.errors import BookingError, NotFound
from portal.catalog.checks import lapse_text
from portal.catalog.providers import provider_for_user
from portal.db import utcnow
from portal.domain.cancellation import provider_may_cancel
from portal.domain.rates import INDIA_TZ
from portal.domain.slots import BOOK_DAYS_AHEAD, last_bookable_day
from portal.domain.states import BookingStatus
from portal.domain.text import Text
from portal.extensions import db
from portal.i18n import N_
from portal.payouts import completion, queries
from portal.web.filters import translate
from portal.web.forms.booking import MeetLinkForm
from portal.web.htmx import is_fragment_request, render
from portal.web.paging import page_args
from portal.web.provider import bp

TEMPLATE = "provider/schedule/index.html"
# Days the schedule shows at a time; Earlier / Later move by as many.
SPAN_DAYS = 14
# How far back the schedule goes (past visits to look up); also keeps a typed date's
# arithmetic inside Python's date range.
PAST_DAYS = 366

MSG_NOT_A_DATE = N_("That is not a date (YYYY-MM-DD): the schedule is shown from today.")
MSG_TOO_FAR = N_("Appointments can be booked at most %(days)s days ahead: these are the last days.")
MSG_TOO_EARLY = N_("The schedule goes back one year: these are its first days.")
# Whose family member a dependent's appointment is for, by the dependent's relationship
# to the account holder (accounts.service.RELATIONSHIPS).
FAMILY_OF = {
    "child": N_("child of %(name)s"),
    "spouse": N_("spouse of %(name)s"),
    "parent": N_("parent of %(name)s"),
    "sibling": N_("sibling of %(name)s"),
}
MSG_FAMILY_OF = N_("family member of %(name)s")


def first_day(text, today):
    """The day the schedule shows from for ``?from=`` ``text`` and a message when it is not
    that day: a malformed date means today, one beyond the booking horizon the last
    ``SPAN_DAYS`` up to it (nothing can be booked later), one over a year back a year back."""
    if not text:
        return today, None
    try:
        asked = date.fromisoformat(text.strip()) if len(text.strip()) == 10 else None
    except ValueError:
        asked = None
    if asked is None:
        return today, MSG_NOT_A_DATE
    last = last_day(today)
    if asked > last:
        return last, Text(MSG_TOO_FAR, days=BOOK_DAYS_AHEAD)
    if asked < today - timedelta(days=PAST_DAYS):
        return today - timedelta(days=PAST_DAYS), MSG_TOO_EARLY
    return asked, None


def last_day(today):
    """The latest day the schedule starts from: its days end on the booking horizon."""
    return last_bookable_day(today) - timedelta(days=SPAN_DAYS - 1)


def _zone(booking):
    return ZoneInfo(booking.clinic.timezone) if booking.clinic else INDIA_TZ


def _local(booking):
    return booking.start_at.astimezone(_zone(booking))


def _local_end(booking):
    return booking.end_at.astimezone(_zone(booking))


def _family_of(booking):
    """ "child of Priya Sharma" for a dependent's appointment, else None."""
    visit = booking.visit
    if not visit.dependent_id:
        return None
    template = FAMILY_OF.get(visit.dependent.relationship_, MSG_FAMILY_OF)
    return Text(template, name=visit.patient.name)


def _co_providers(booking, provider):
    """The names of a team appointment's other providers ("Dr Gopal Krishnan, …"), None
    for one of the provider's own: read from the booking's providers, which the page loads
    with its rows (and a row shown alone with its booking)."""
    others = [p.display_name for p in booking.providers if p.id != provider.id]
    return ", ".join(others) or None


def _held_until(booking, now):
    """When an unpaid hold lapses, at the clinic, as the refusals it causes say it
    (``catalog.checks.lapse_text``: "16:50", with its date when not today)."""
    lapses = booking.visit.hold_expires_at
    return lapse_text(lapses, _zone(booking), now) if lapses is not None else None


def _at_clinic(when, booking):
    """A time of the booking's moves (where it was, where it is moving), at the clinic, or
    None."""
    return when.astimezone(_zone(booking)) if when is not None else None


def _is_held_move(row):
    """The row is a move's new time held while its fee is paid (``queries.HeldMove``)."""
    return isinstance(row, queries.HeldMove)


def _move_held_until(held, now):
    """When a move's held new time lapses unpaid, said as a visit's hold's is."""
    return lapse_text(held.lapses_at, _zone(held), now)


def _by_day(bookings):
    """``[(local day, [bookings])]`` in the page's order (by start)."""
    return [(day, list(rows)) for day, rows in groupby(bookings, lambda b: _local(b).date())]


def _context(provider, now, days=SPAN_DAYS):
    """The page's values: ``days`` days from ``?from=`` (Today's page: 1, from today)."""
    today = now.astimezone(INDIA_TZ).date()
    if days == SPAN_DAYS:
        first, notice = first_day(request.args.get("from"), today)
    else:
        first, notice = today, None
    page = queries.schedule_page(provider.id, now=now, first_day=first, days=days, **page_args(50))
    earliest, latest = today - timedelta(days=PAST_DAYS), last_day(today)
    span = timedelta(days=SPAN_DAYS)
    moved, moving = page.extra["moved_from"], page.extra["moving_to"]
    return {
        "provider": provider,
        "page": page,
        "days": _by_day(page.items),
        "first": first,
        "last": first + span - timedelta(days=1),
        "earlier": max(first - span, earliest) if first > earliest else None,
        "later": min(first + span, latest) if first < latest else None,
        "earliest": earliest,
        "latest": last_bookable_day(today),
        "notice": notice,
        **_row_context(
            provider,
            now,
            lambda b: (moved.get(b.id), moving.get(b.id)),
            first if days == SPAN_DAYS else None,
            on_today=days != SPAN_DAYS,
        ),
    }


# The pages a row's form may send a plain request back to, by the name it posts as
# ``page`` (an allow-list: the value is never an address); anything else is the schedule.
TODAY = "today"
BACK_TO = {TODAY: "provider.home"}


def _row_context(provider, now, moves, page_from, on_today=False):
    """What a row of ``provider``'s schedule reads: ``moves(booking)`` its start before
    its latest move and the new start a move of it awaits its fee for (UTC, either None);
    ``page_from`` the schedule page's first day, which the row's forms send back (a plain
    request returns to that page), None on Today's page; ``on_today``: the row is on
    Today's page, which its forms name instead (``page=today``, ``BACK_TO``). ``back``:
    those hidden fields. ``co_providers``: a team appointment's other providers. A row is
    a booking, or a move's held new time (``is_held_move``: ``family_of``, ``local`` and
    ``co_providers`` read it too)."""
    today = now.astimezone(INDIA_TZ).date()
    if page_from:
        back = {"from": page_from.isoformat()}
    else:
        back = {"page": TODAY} if on_today else {}
    return {
        "local": _local,
        "local_end": _local_end,
        "family_of": lambda b: _family_of(b.booking if _is_held_move(b) else b),
        "moved_from": lambda b: _at_clinic(moves(b)[0], b),
        "moving_to": lambda b: _at_clinic(moves(b)[1], b),
        "is_held_move": _is_held_move,
        "co_providers": lambda b: _co_providers(b.booking if _is_held_move(b) else b, provider),
        "move_held_until": lambda held: _move_held_until(held, now),
        "held_until": lambda b: _held_until(b, now),
        "can_start": lambda b: completion.can_start(b, now),
        "can_complete": lambda b: completion.can_complete(b, now),
        # Before its start only (a doctor's cancellation is refused after it).
        "can_cancel": lambda b: (
            b.status == BookingStatus.CONFIRMED and provider_may_cancel(b.start_at - now)
        ),
        "completes_from": lambda b: _at_clinic(completion.completes_from(b, now), b),
        "back": back,
        "today": today,
    }


@bp.get("/schedule")
def schedule():
    provider = provider_for_user(current_user)
    if provider is None:
        return render("provider/schedule/no_profile.html")
    return render(TEMPLATE, **_context(provider, utcnow()))


def today_page():
    """Today's appointments alone (the provider's home), and any still STARTED."""
    provider = provider_for_user(current_user)
    if provider is None:
        return render("provider/schedule/no_profile.html")
    return render("provider/schedule/today.html", **_context(provider, utcnow(), days=1))


def _provider():
    provider = provider_for_user(current_user)
    if provider is None:
        abort(404)
    return provider


def _own_booking(booking_id):
    """The booking to show again after a refusal (404 when it is not the provider's)."""
    try:
        return completion._booking_for(current_user, booking_id)
    except NotFound:
        abort(404)


def _act(action, booking_id, done_message):
    provider = _provider()  # 404 without a provider profile
    error = None
    try:
        booking = action(current_user, booking_id)
    except NotFound:
        abort(404)
    except BookingError as exc:
        db.session.rollback()
        error = exc.message
        booking = _own_booking(booking_id)
    return _answer(provider, booking, error, done_message)


def _posted_from(today):
    """The page's first day the row's form sent (``from``), when it is a day the schedule
    shows from as asked, else None (today's page)."""
    text = request.form.get("from")
    first, notice = first_day(text, today)
    return first if text and notice is None else None


def _answer(provider, booking, error, done_message, meet_error=None, meet_value=None):
    """The row alone (htmx; 422 when refused), else a flash and back to the page it was on:
    Today's (``page=today``) or the schedule from its ``from``. The row is read alone,
    whichever page of days it is on (its moves: one query)."""
    now = utcnow()
    page_from = _posted_from(now.astimezone(INDIA_TZ).date())
    on_today = page_from is None and request.form.get("page") in BACK_TO
    if is_fragment_request():
        moves = queries.row_moves(booking.id, now)
        return render(
            TEMPLATE,
            block="row",
            status=422 if error or meet_error else 200,
            b=booking,
            error=error,
            message=None if error or meet_error else done_message,
            meet_error=meet_error,
            meet_value=meet_value,
            **_row_context(provider, now, lambda b: moves, page_from, on_today),
        )
    # Said now: a message with values (Text) reaches the next page as plain English text.
    error = error or meet_error
    flash(translate(error) if error else done_message, "error" if error else "success")
    if on_today:
        return redirect(url_for(BACK_TO[request.form["page"]]), 303)
    args = {"from": page_from.isoformat()} if page_from else {}
    return redirect(url_for("provider.schedule", **args), 303)


@bp.post("/schedule/<int:booking_id>/start")
def schedule_start(booking_id):
    return _act(completion.start_booking, booking_id, N_("Appointment started."))


@bp.post("/schedule/<int:booking_id>/complete")
def schedule_complete(booking_id):
    return _act(
        completion.complete_booking,
        booking_id,
        N_("Appointment completed. Your earning is on your payable balance."),
    )


@bp.post("/schedule/<int:booking_id>/meet-link")
def schedule_meet_link(booking_id):
    provider = _provider()  # 404 without a provider profile
    form = MeetLinkForm()
    if not form.validate_on_submit():
        booking = _own_booking(booking_id)
        error = next(e for errors in form.errors.values() for e in errors)
        return _answer(provider, booking, None, None, error, form.meet_link.data)
    try:
        booking = visits.set_meet_link(current_user, booking_id, form.meet_link.data)
    except NotFound:
        abort(404)
    except BookingError as exc:
        db.session.rollback()
        booking = _own_booking(booking_id)
        return _answer(provider, booking, None, None, exc.message, form.meet_link.data)
    return _answer(provider, booking, None, N_("Meeting link saved."))
