"""The provider's schedule: today's and upcoming appointments, with Start and Complete.

Start/Complete are POSTs (CSRF); with htmx only the appointment's row is swapped, a plain
request gets a 303 back to the page. Another provider's booking is a 404."""

from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, url_for
from flask_login import current_user

from portal.booking.errors import BookingError, NotFound
from portal.catalog.providers import provider_for_user
from portal.db import utcnow
from portal.domain.rates import INDIA_TZ
from portal.extensions import db
from portal.i18n import N_
from portal.payouts import completion, queries
from portal.web.filters import translate
from portal.web.htmx import is_fragment_request, render
from portal.web.paging import page_args
from portal.web.provider import bp

TEMPLATE = "provider/schedule/index.html"


def _local(booking):
    zone = ZoneInfo(booking.clinic.timezone) if booking.clinic else INDIA_TZ
    return booking.start_at.astimezone(zone)


def _context(provider, now):
    today = now.astimezone(INDIA_TZ).date()
    page = queries.schedule_page(provider.id, now=now, **page_args(50))
    today_rows = [b for b in page.items if _local(b).date() <= today]
    upcoming = [b for b in page.items if _local(b).date() > today]
    return {
        "provider": provider,
        "page": page,
        "today_rows": today_rows,
        "upcoming": upcoming,
        "local": _local,
        "can_start": lambda b: completion.can_start(b, now),
        "can_complete": completion.can_complete,
        "today": today,
    }


@bp.get("/schedule")
def schedule():
    provider = provider_for_user(current_user)
    if provider is None:
        return render("provider/schedule/no_profile.html")
    return render(TEMPLATE, **_context(provider, utcnow()))


def _act(action, booking_id, done_message):
    provider = provider_for_user(current_user)
    if provider is None:
        abort(404)
    error = None
    try:
        booking = action(current_user, booking_id)
    except NotFound:
        abort(404)
    except BookingError as exc:
        db.session.rollback()
        error = exc.message
        booking = completion._booking_for(current_user, booking_id) if booking_id else None
    if is_fragment_request():
        now = utcnow()
        return render(
            TEMPLATE,
            block="row",
            status=422 if error else 200,
            b=booking,
            error=error,
            message=None if error else done_message,
            **_context(provider, now),
        )
    # Said now: a message with values (Text) reaches the next page as plain English text.
    flash(translate(error) if error else done_message, "error" if error else "success")
    return redirect(url_for("provider.schedule"), 303)


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
