"""Notices, mail and SMS in the reader's own language (users.language), whatever the
language of the job or request that sends them."""

from datetime import timedelta

import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.accounts.models import User
from portal.booking.models import IndividualBooking
from portal.extensions import db
from portal.notify.models import Delivery, MailMessage, Notification
from portal.notify.reminders import schedule_reminders
from portal.notify.tasks import on_booking_cancelled, on_booking_confirmed
from tests.notify.factories import NOW, make_booking


def _speaks(user_id, language):
    db.session.get(User, user_id).language = language
    db.session.commit()


def _latest(user_id, kind):
    db.session.expire_all()
    return db.session.scalars(
        sa.select(Notification)
        .where(Notification.user_id == user_id, Notification.kind == kind)
        .order_by(Notification.id.desc())
    ).first()


def test_a_hindi_patient_is_told_in_hindi_and_the_doctor_in_english(world):
    _speaks(world.patient, "hi")
    booking = make_booking(world, NOW + timedelta(days=2))
    visit_id = db.session.get(IndividualBooking, booking).master_id
    on_booking_confirmed(visit_id)
    db.session.commit()

    notice = _latest(world.patient, "booking.confirmed")
    assert "की पुष्टि हो गई" in notice.title and "का भुगतान हुआ" in notice.body
    assert "confirmed" not in notice.title
    doctor = _latest(world.doctor_users[0], "booking.new")
    assert doctor.title.startswith("New appointment")

    [mail] = db.session.scalars(
        sa.select(MailMessage).where(MailMessage.to == "patient@example.com")
    ).all()
    assert "नमस्ते" in mail.text and "नमस्ते" in mail.html
    for english in ("Hello", "is confirmed", "Paid", "calendar", "Clinic Portal account"):
        assert english not in mail.text and english not in mail.html, english


def test_cancellation_and_reminders_in_hindi_with_hindi_dates(world):
    _speaks(world.patient, "hi")
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    with time_machine.travel(start - timedelta(hours=24), tick=False):
        jobs.run_periodic("notify.send_due_reminders")
    reminder = _latest(world.patient, "reminder")
    assert reminder.title == "रिमाइंडर: Consultation कल"
    # The day and month names come from the Hindi locale.
    assert any(month in reminder.body for month in ("जन॰", "फ़र॰", "मार्च", "अप्रैल", "मई", "जून",
               "जुल॰", "अग॰", "सित॰", "अक्तू॰", "नव॰", "दिस॰"))  # fmt: skip
    texts = db.session.scalars(
        sa.select(Delivery.kind).where(Delivery.user_id == world.patient)
    ).all()
    assert "reminder" in texts

    db.session.get(IndividualBooking, booking).status = "CANCELLED"
    on_booking_cancelled(booking, by="patient", refund=52_950)
    db.session.commit()
    cancelled = _latest(world.patient, "booking.cancelled")
    assert cancelled.title == "रद्द: Consultation"
    assert cancelled.body.startswith("आपने Consultation") and "₹529.50 का रिफ़ंड" in cancelled.body
