"""What notices say, in the reader's language: the language of a user while their notice
is written, and times as people read them (clinic time, the locale's day and month names)."""

from contextlib import contextmanager

from flask_babel import force_locale, format_datetime, get_locale
from flask_babel import gettext as _

from portal.accounts.models import User
from portal.extensions import db


@contextmanager
def speaking_to(user_id):
    """Messages made inside are in ``user_id``'s language (``users.language``)."""
    user = db.session.get(User, user_id) if user_id else None
    with force_locale((user.language if user else None) or "en"):
        yield


def spoken_time(local):
    """``Mon 1 Jun 2026, 9:00 AM IST`` in English; the same with the locale's names of
    days and months otherwise (``local`` is already in the clinic's zone)."""
    zone = local.tzname() or ""
    if str(get_locale() or "en") == "en":  # strftime: Babel's formatter costs far more
        hour = local.hour % 12 or 12
        return f"{local:%a} {local.day} {local:%b %Y}, {hour}:{local:%M %p} {zone}".strip()
    return f"{format_datetime(local, 'EEE d MMM y, h:mm a', rebase=False)} {zone}".strip()


def place(booking):
    """Where the booking happens, as a calendar entry and a reminder say it: an online
    visit's meeting link, or "Online" until it has one, never the clinic's street address
    (a patient must not travel for a video consultation)."""
    if booking.service.is_online:
        return booking.meet_link or _("Online")
    clinic = booking.clinic
    return ", ".join(x for x in (clinic.name, clinic.address, clinic.city) if x)


def whose(booking):
    """What the account holder calls the appointment: the service, and whose it is when
    the visit is a dependent's (a guardian of two children can tell whose). The notices'
    titles and the calendar file's event say it alike."""
    visit = booking.visit
    if visit.dependent_id:
        return _("%(service)s for %(name)s", service=booking.service.name, name=visit.for_name)
    return booking.service.name
