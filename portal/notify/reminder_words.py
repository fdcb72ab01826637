"""What a reminder says, worded for the time left when it goes.

Its send (``reminders._deliver``) words it, and each attempt of its mail or text asks
``reworded`` first (``mail.send_mail``, ``channels.send_text``): a retry on the outbox's
backoff comes hours later, when "tomorrow" may be today and "in 1 hour" 17 minutes. A
module of its own, below ``reminders`` and the senders, so both words it the same way."""

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import ngettext

from portal.booking.models import IndividualBooking
from portal.config import policy
from portal.extensions import db
from portal.notify.links import clinic_day, visit_path
from portal.notify.models import Reminder
from portal.notify.wording import place, speaking_to, spoken_time

HOURS_SAID = 6  # up to this many hours ahead a reminder says "in N hours"; beyond, the day


@dataclass(frozen=True)
class Words:
    """A reminder's notice (title, body, link, in its reader's language) and what its mail
    says besides (``mail_context``, for the ``reminder`` template)."""

    recipient_id: int
    title: str
    body: str
    link: str
    mail_context: dict


def when_words(start, now, timezone):
    """How far ahead the appointment is when the reminder goes, in words, from the time
    actually left (a reminder sent late — the scheduler was down — says what is true
    then, not what its offset meant): under an hour "in N minutes", up to ``HOURS_SAID``
    hours "in N hours", else by the clinic's calendar "today", "tomorrow" or "in N days".
    From 10 minutes on, minutes are said to the nearest 5: the scheduler's tick (a minute)
    after the 1 h reminder's time is still "in 1 hour", not "in 59 minutes".
    """
    exact = (start - now).total_seconds() / 60
    minutes = max(1, round(exact)) if exact < 10 else 5 * round(exact / 5)
    if minutes < 60:
        return ngettext("in %(num)s minute", "in %(num)s minutes", minutes)
    hours = round(exact / 60)
    if hours <= HOURS_SAID:
        return ngettext("in %(num)s hour", "in %(num)s hours", hours)
    zone = ZoneInfo(timezone)
    days = (start.astimezone(zone).date() - now.astimezone(zone).date()).days
    if days <= 0:
        return _("today")
    if days == 1:
        return _("tomorrow")
    return ngettext("in %(num)s day", "in %(num)s days", days)


def clinic_zone(booking):
    """The name of the time zone the booking's clinic keeps."""
    return booking.clinic.timezone or policy().default_timezone


def local_time(booking):
    return spoken_time(booking.start_at.astimezone(ZoneInfo(clinic_zone(booking))))


def reminder_words(reminder, booking, now):
    """The reminder's ``Words`` as of ``now``, in its recipient's language."""
    visit = booking.visit
    providers = ", ".join(p.display_name for p in booking.providers)
    who = visit.for_name
    with speaking_to(reminder.recipient_id):
        when = local_time(booking)
        where = place(booking)
        title, body, link = _reminder_text(reminder, booking, when, providers, who, now)
    context = {
        "booking": booking, "visit": visit, "when": when, "where": where,
        "providers": providers, "who": who, "role": reminder.role,
        "offset": reminder.offset_key,
    }  # fmt: skip
    return Words(reminder.recipient_id, title, body, link, context)


def reworded(reminder_id, now):
    """Before an attempt of a sent reminder's mail or text: its ``Words`` as of ``now``
    when the time left reads otherwise than when it was sent ("tomorrow" then, "in 4
    hours" now), else None (the message stands as written). Only the time left is
    compared, so the first attempt, right after the send, renders nothing again."""
    reminder = db.session.get(Reminder, reminder_id)
    if reminder is None or reminder.sent_at is None:
        return None
    booking = db.session.get(IndividualBooking, reminder.booking_id)
    zone = clinic_zone(booking)
    if when_words(reminder.for_start, reminder.sent_at, zone) == when_words(
        reminder.for_start, now, zone
    ):
        return None
    return reminder_words(reminder, booking, now)


def _reminder_text(reminder, booking, when, providers, who, now):
    visit = booking.visit
    soon = when_words(booking.start_at, now, clinic_zone(booking))
    service, clinic = booking.service.name, booking.clinic.name
    if reminder.role == "patient":
        title = _("Reminder: %(service)s %(soon)s", service=service, soon=soon)
        body = _(
            "%(who)s's %(service)s with %(providers)s at %(clinic)s starts %(when)s.",
            who=who, service=service, providers=providers, clinic=clinic, when=when,
        )  # fmt: skip
        link = visit_path("patient", visit_id=visit.id)
    else:
        title = _("Reminder: %(who)s %(soon)s", who=who, soon=soon)
        body = _(
            "%(service)s with %(who)s at %(clinic)s starts %(when)s.",
            service=service, who=who, clinic=clinic, when=when,
        )  # fmt: skip
        link = visit_path(
            "provider", visit_id=visit.id, booking_id=booking.id, day=clinic_day(booking)
        )
    if booking.meet_link:
        body += " " + _("Join online: %(link)s", link=booking.meet_link)
    elif reminder.role != "patient" and booking.needs_meet_link:
        # The provider adds the link (docs/booking.md); the patient's reminder waits for it.
        body += " " + _("No meeting link yet: add it on your schedule.")
    return title, body, link


__all__ = ["Words", "when_words", "clinic_zone", "local_time", "reminder_words", "reworded"]
