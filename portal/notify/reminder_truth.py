"""Is what a reminder says still true? Its send (``reminders``) and each attempt of its
mail or text (``mail.send_mail``, ``channels.send_text``) ask, so a message retried after an
outage, or by an admin, never says "tomorrow" of a cancelled visit. A module of its own:
the senders sit below ``reminders`` (which notifies through them) and ask from here."""

from portal.booking.models import IndividualBooking
from portal.db import utcnow
from portal.domain.states import BookingStatus
from portal.extensions import db
from portal.notify.models import Reminder


def no_longer_true(reminder, booking, now):
    """Why what the reminder says is no longer true (the booking not confirmed, re-timed,
    or begun), else None. Checked when it is sent and again before each attempt of its
    mail or text (``still_true``)."""
    if booking is None or booking.status != BookingStatus.CONFIRMED:
        return "booking not confirmed"
    if booking.start_at != reminder.for_start:
        return "booking re-timed"
    if booking.start_at <= now:
        return "start passed"
    return None


def why_withdrawn(reminder_id, now=None):
    """For a delivery carrying reminder ``reminder_id``, before an attempt: why it must
    not go (``no_longer_true``), else None. A mail or text retried after an outage, or by
    an admin, would otherwise say "tomorrow" of a cancelled visit, or "in 1 hour" after
    the start."""
    reminder = db.session.get(Reminder, reminder_id)
    if reminder is None:
        return None
    booking = db.session.get(IndividualBooking, reminder.booking_id, populate_existing=True)
    return no_longer_true(reminder, booking, now or utcnow())
