"""Is what a reminder says still true? Its send (``reminders``) and each attempt of its
mail or text (``mail.send_mail``, ``channels.send_text``) ask, so a message retried after an
outage, or by an admin, never says "tomorrow" of a cancelled visit. A module of its own:
the senders sit below ``reminders`` (which notifies through them) and ask from here."""

import sqlalchemy as sa

from portal.booking.models import IndividualBooking
from portal.db import utcnow
from portal.domain.states import BookingStatus
from portal.extensions import db
from portal.notify.models import UNSENT, Delivery, DeliveryStatus, Reminder


def recipients(booking):
    """``[(user_id, role)]``: whom the booking's reminders are for: the visit's account
    holder (the guardian for a dependent), then each provider's login; each person once."""
    seen, out = set(), []
    for user_id, role in [(booking.visit.patient_id, "patient")] + [
        (p.user_id, "provider") for p in booking.providers
    ]:
        if user_id not in seen:
            seen.add(user_id)
            out.append((user_id, role))
    return out


def no_longer_true(reminder, booking, now):
    """Why what the reminder says is no longer true (the booking not confirmed, re-timed,
    or begun, or its recipient no longer on it: a reschedule to another provider at the
    same start), else None. Checked when it is sent and again before each attempt of its
    mail or text (``why_withdrawn``)."""
    if booking is None or booking.status != BookingStatus.CONFIRMED:
        return "booking not confirmed"
    if booking.start_at != reminder.for_start:
        return "booking re-timed"
    if booking.start_at <= now:
        return "start passed"
    if all(user_id != reminder.recipient_id for user_id, _role in recipients(booking)):
        return "no longer on the booking"
    return None


def superseded_by(reminder, now):
    """The offset of a later reminder (due after this one) to the same person about the
    same start that was delivered on any channel, or that is due by ``now`` and waiting
    to be sent, else None. Delivered on any channel, not only the retried one: the later
    reminder is delivered in-app the moment it is sent, so the person has been told the
    nearer time; this one's words ("tomorrow") are no longer true, and everything else it
    says the later one says too (its own mail or text still comes on this channel). Due
    and waiting (the scheduler's next tick sends it): this one, said again with the time
    left, would say what the later one says a moment after (two "in 15 minutes")."""
    delivered = (
        sa.select(Delivery.id)
        .where(Delivery.reminder_id == Reminder.id, Delivery.status == DeliveryStatus.SENT)
        .exists()
    )
    waiting = sa.and_(Reminder.status.in_(UNSENT), Reminder.due_at <= now)
    return db.session.scalar(
        sa.select(Reminder.offset_key)
        .where(
            Reminder.booking_id == reminder.booking_id,
            Reminder.recipient_id == reminder.recipient_id,
            Reminder.for_start == reminder.for_start,
            Reminder.id != reminder.id,
            Reminder.due_at > reminder.due_at,
            sa.or_(delivered, waiting),
        )
        .order_by(Reminder.due_at.desc())
        .limit(1)
    )


def why_withdrawn(reminder_id, now=None):
    """For a delivery carrying reminder ``reminder_id``, before an attempt: why it must
    not go (``no_longer_true``, or a later reminder of the same visit to the same person
    delivered or due: ``superseded_by``), else None. A mail or text retried after an outage, or
    by an admin, would otherwise say "tomorrow" of a cancelled visit, "in 1 hour" after
    the start, or "tomorrow" after "in 1 hour"."""
    reminder = db.session.get(Reminder, reminder_id)
    if reminder is None:
        return None
    booking = db.session.get(IndividualBooking, reminder.booking_id, populate_existing=True)
    now = now or utcnow()
    untrue = no_longer_true(reminder, booking, now)
    if untrue:
        return untrue
    later = superseded_by(reminder, now)
    return f"superseded by the {later} reminder" if later else None
