"""Confirmation, cancellation, reschedule and payment trouble as notices (idempotent), and
the calendar file."""

from datetime import timedelta

import sqlalchemy as sa

from portal.booking.models import ATTENTION_LATE_PAYMENT, IndividualBooking, MasterBooking
from portal.extensions import db
from portal.notify import ics
from portal.notify.models import MailMessage, Notification, Reminder, ReminderStatus
from portal.notify.tasks import (
    on_booking_cancelled,
    on_booking_confirmed,
    on_booking_rescheduled,
    on_payment_attention,
)
from tests.notify.factories import NOW, make_booking


def _notices(user_id=None):
    db.session.expire_all()
    query = sa.select(Notification).order_by(Notification.id)
    if user_id:
        query = query.where(Notification.user_id == user_id)
    return db.session.scalars(query).all()


def _visit_of(booking_id):
    return db.session.get(IndividualBooking, booking_id).master_id


def test_confirmation_schedules_reminders_and_tells_everyone_once(world):
    booking = make_booking(world, NOW + timedelta(days=2), providers=world.doctors)
    visit_id = _visit_of(booking)
    on_booking_confirmed(visit_id)
    db.session.commit()
    on_booking_confirmed(visit_id)  # the job ran twice: nothing new
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(Reminder.id))) == 9
    [patient] = _notices(world.patient)
    assert patient.kind == "booking.confirmed" and "is confirmed" in patient.body
    assert [n.kind for n in _notices(world.doctor_users[0])] == ["booking.new"]
    assert [n.kind for n in _notices(world.doctor_users[1])] == ["booking.new"]
    admin = _notices(world.admin)
    assert [(n.kind, n.priority) for n in admin] == [("alert.NEW_BOOKING", "MEDIUM")]
    [mail] = db.session.scalars(
        sa.select(MailMessage).where(MailMessage.to == "patient@example.com")
    ).all()
    [attachment] = mail.attachments
    assert attachment["content_type"] == "text/calendar; method=PUBLISH"
    assert "BEGIN:VEVENT" in attachment["content"]


def test_cancellation_withdraws_and_notifies_patient_providers_and_admins(world):
    booking = make_booking(world, NOW + timedelta(days=2))
    on_booking_confirmed(_visit_of(booking))
    db.session.commit()
    db.session.get(IndividualBooking, booking).status = "CANCELLED"
    on_booking_cancelled(booking, by="patient", refund=52_950)
    on_booking_cancelled(booking, by="patient", refund=52_950)
    db.session.commit()
    assert {r.status for r in db.session.scalars(sa.select(Reminder))} == {ReminderStatus.WITHDRAWN}
    patient = [n for n in _notices(world.patient) if n.kind == "booking.cancelled"]
    assert len(patient) == 1 and "₹529.50" in patient[0].body
    assert [n.kind for n in _notices(world.doctor_users[0])][-1] == "booking.cancelled"
    alerts = [n for n in _notices(world.admin) if n.kind == "alert.CANCELLATION"]
    assert len(alerts) == 1 and alerts[0].priority == "MEDIUM"
    # The confirmation's calendar file put it in the patient's calendar: this takes it out.
    [mail] = db.session.scalars(
        sa.select(MailMessage).where(
            MailMessage.to == "patient@example.com", MailMessage.subject.like("Cancelled%")
        )
    ).all()
    [attachment] = mail.attachments
    content = attachment["content"]
    assert attachment["content_type"] == "text/calendar; method=CANCEL"
    assert "METHOD:CANCEL" in content and "STATUS:CANCELLED" in content
    assert f"UID:booking-{booking}@" in content and "SEQUENCE:0" not in content


def test_reschedule_retimes_and_sends_an_updated_calendar_entry(world):
    start = NOW + timedelta(days=3)
    booking = make_booking(world, start)
    on_booking_confirmed(_visit_of(booking))
    db.session.commit()
    item = db.session.get(IndividualBooking, booking)
    new_start = start + timedelta(days=1)
    item.start_at, item.end_at = new_start, new_start + timedelta(minutes=30)
    on_booking_rescheduled(booking, old_start=start)
    db.session.commit()
    pending = db.session.scalars(
        sa.select(Reminder).where(Reminder.status == ReminderStatus.PENDING)
    ).all()
    assert {r.for_start for r in pending} == {new_start}
    [notice] = [n for n in _notices(world.patient) if n.kind == "booking.rescheduled"]
    assert "(was Thu 4 Jun 2026, 8:00 AM IST)" in notice.body
    mail = db.session.scalars(
        sa.select(MailMessage).where(
            MailMessage.subject.like("Rescheduled%"), MailMessage.to == "patient@example.com"
        )
    ).one()
    content = mail.attachments[0]["content"]
    assert f"UID:booking-{booking}@" in content  # same entry, updated
    assert "SEQUENCE:0" not in content


def test_every_move_is_told_even_back_to_an_earlier_time(world):
    """A → B → A → B: three moves, three notices each; the same move's job run twice, one."""
    a = NOW + timedelta(days=3)
    b = a + timedelta(days=1)
    booking = make_booking(world, a, providers=world.doctors[:1])
    item = db.session.get(IndividualBooking, booking)
    for move, (old, new) in enumerate([(a, b), (b, a), (a, b)], start=1):
        item.start_at, item.end_at = new, new + timedelta(minutes=30)
        on_booking_rescheduled(booking, old_start=old, reschedule_id=move)
        on_booking_rescheduled(booking, old_start=old, reschedule_id=move)  # run twice
        db.session.commit()
    for user in (world.patient, world.doctor_users[0]):
        moved = [n for n in _notices(user) if n.kind == "booking.rescheduled"]
        assert len(moved) == 3


def test_payment_attention_raises_a_high_alert_once_per_episode(world):
    booking = make_booking(world, NOW + timedelta(days=2), status="SCHEDULED")
    visit_id = _visit_of(booking)
    assert len(on_payment_attention(visit_id, "PAYMENT_FAILED")) == 2
    db.session.commit()
    assert on_payment_attention(visit_id, "PAYMENT_FAILED") == []
    [alert] = _notices(world.admin)
    assert (alert.kind, alert.priority) == ("alert.PAYMENT_FAILED", "HIGH")
    number = db.session.get(MasterBooking, visit_id).number
    assert alert.title == f"Payment failed: visit {number}"  # from the first failure


def test_the_patients_payment_mail_records_whom_it_was_for(world):
    """Review: the patient's "About your payment" mail was queued by address only, so
    what was sent to them by their id (``notify.queries.sent_to``: their data download)
    left it out."""
    from portal.notify import queries, tasks

    booking = make_booking(world, NOW + timedelta(days=2), status="SCHEDULED")
    visit_id = _visit_of(booking)
    tasks.payment_attention(visit_id, ATTENTION_LATE_PAYMENT)
    db.session.commit()
    sent = [(r.kind, r.channel, r.subject) for r in queries.sent_to(world.patient)]
    number = db.session.get(MasterBooking, visit_id).number
    assert ("payment_attention", "email", f"About your payment for visit {number}") in sent


def test_ics_escapes_folds_and_uses_crlf(world, app):
    booking = make_booking(world, NOW + timedelta(days=2))
    item = db.session.get(IndividualBooking, booking)
    item.clinic.name = "Clinic; with, commas\\and a very long name that goes on and on — ₹ ok"
    text = ics.calendar([item], url="https://portal.example/me/visits/1")
    lines = text.split("\r\n")
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == ""
    assert "\n" not in text.replace("\r\n", "")
    assert all(len(line.encode()) <= 75 for line in lines)
    unfolded = text.replace("\r\n ", "")
    assert "Clinic\\; with\\, commas\\\\and a very long name" in unfolded
    assert "VERSION:2.0" in lines and "PRODID:-//Clinic Portal//Visits//EN" in lines
    for needed in ("UID:", "DTSTAMP:", "DTSTART:", "DTEND:"):
        assert needed in unfolded
    assert ics.fold("é" * 80).split("\r\n ")[0].encode().__len__() <= 75


def test_a_providers_notice_opens_the_schedule_at_the_appointments_day(world):
    """Reviewer's finding: a notice of an appointment weeks ahead opened the schedule at
    today's 14 days, where it is not. Its link carries the day at the clinic (IST here:
    23:30 UTC is the next day there)."""
    start = (NOW + timedelta(days=40)).replace(hour=23, minute=30)
    booking = make_booking(world, start)
    on_booking_confirmed(_visit_of(booking))
    db.session.commit()
    [notice] = _notices(world.doctor_users[0])
    day = (start + timedelta(hours=5, minutes=30)).date()
    assert notice.link == f"/provider/schedule?from={day.isoformat()}"


def test_a_team_appointment_names_the_other_providers_to_each(world):
    """Review finding: a doctor's "New appointment" of a team appointment never named the
    co-doctor. Each provider reads the others, not themself; an appointment of one
    provider names no team."""
    from portal.accounts.models import User

    db.session.get(User, world.doctor_users[1]).language = "hi"
    team = make_booking(world, NOW + timedelta(days=2), providers=world.doctors)
    own = make_booking(world, NOW + timedelta(days=3), providers=world.doctors[:1])
    on_booking_confirmed(_visit_of(team))
    on_booking_confirmed(_visit_of(own))
    db.session.commit()
    first = [n.body for n in _notices(world.doctor_users[0]) if n.kind == "booking.new"]
    assert first == [
        "Consultation with Priya Patient at Indiranagar Clinic, Wed 3 Jun 2026, 8:00 AM IST. "
        "With you on this team appointment: Dr Doc 2.",
        "Consultation with Priya Patient at Indiranagar Clinic, Thu 4 Jun 2026, 8:00 AM IST.",
    ]
    (second,) = [n.body for n in _notices(world.doctor_users[1]) if n.kind == "booking.new"]
    assert second.endswith("। इस टीम अपॉइंटमेंट में आपके साथ: Dr Doc 1।")
    assert "Dr Doc 2" not in second


def test_a_moved_appointment_names_the_patient_to_its_providers_not_themselves(world):
    """As the cancellation's: the provider's "Rescheduled" read "Consultation with Dr Doc
    1, Dr Doc 2 at …" to Dr Doc 1. It names the patient, and a team's others."""
    start = NOW + timedelta(days=3)
    booking = make_booking(world, start, providers=world.doctors)
    item = db.session.get(IndividualBooking, booking)
    new_start = start + timedelta(days=1)
    item.start_at, item.end_at = new_start, new_start + timedelta(minutes=30)
    on_booking_rescheduled(booking, old_start=start, reschedule_id=1)
    db.session.commit()
    (notice,) = [n for n in _notices(world.doctor_users[0]) if n.kind == "booking.rescheduled"]
    assert notice.title == "Rescheduled: Priya Patient"
    assert notice.body == (
        "Consultation with Priya Patient at Indiranagar Clinic, Fri 5 Jun 2026, 8:00 AM IST "
        "(was Thu 4 Jun 2026, 8:00 AM IST). With you on this team appointment: Dr Doc 2."
    )
