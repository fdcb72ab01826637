"""The calendar file a guardian receives for a dependent's visit says whose appointment it
is, in its title and its description, as the notice and mail it comes with do ("Your
visit V00001 for Little One is confirmed"). Review finding: the .ics event read only
"Consultation – Indiranagar Clinic" / "Consultation with Dr Doc 1", so a parent of two
children booked at the same clinic could not tell from the calendar whom to take (the
same reason the cancellation's notice was made to name the dependent,
tests/notify/test_calendar_and_whose.py). The files go to the account holder only."""

from datetime import timedelta

import sqlalchemy as sa

from portal.accounts.models import User
from portal.booking import visits
from portal.booking.models import IndividualBooking
from portal.catalog.models import Service
from portal.extensions import db
from portal.notify.models import MailMessage
from portal.notify.tasks import on_booking_cancelled, on_booking_confirmed, on_booking_rescheduled
from tests.notify.factories import NOW, make_booking


def _calendars(to="patient@example.com"):
    """(subject, {name: value} of the VEVENT) of each calendar file mailed to ``to``."""
    db.session.expire_all()
    mails = db.session.scalars(
        sa.select(MailMessage).where(MailMessage.to == to).order_by(MailMessage.id)
    ).all()
    out = []
    for mail in mails:
        for attachment in mail.attachments or []:
            content = attachment["content"].replace("\r\n ", "")
            event = {}
            for line in content.splitlines():
                name, _sep, value = line.partition(":")
                event.setdefault(name.split(";")[0], value)
            out.append((mail.subject, event))
    return out


def _confirm_move_and_cancel(world, *, dependent):
    booking = make_booking(world, NOW + timedelta(days=2), dependent=dependent)
    on_booking_confirmed(db.session.get(IndividualBooking, booking).master_id)
    db.session.commit()
    on_booking_rescheduled(booking, old_start=NOW + timedelta(days=1))
    db.session.commit()
    db.session.get(IndividualBooking, booking).status = "CANCELLED"
    on_booking_cancelled(booking, by="clinic", refund=52_950, reason="Doctor unwell")
    db.session.commit()
    return _calendars()


def test_a_dependents_calendar_files_name_the_dependent(world):
    calendars = _confirm_move_and_cancel(world, dependent=True)
    assert len(calendars) == 3, [s for s, _e in calendars]  # confirmed, moved, cancelled
    for subject, event in calendars:
        assert event["SUMMARY"] == "Consultation for Little One – Indiranagar Clinic", subject
        assert event["DESCRIPTION"].startswith("For Little One\\n"), (subject, event)


def test_the_patients_own_calendar_file_names_no_one(world):
    """The account holder's own visit: the title stays the service and the clinic."""
    for subject, event in _confirm_move_and_cancel(world, dependent=False):
        assert event["SUMMARY"] == "Consultation – Indiranagar Clinic", subject
        assert not event["DESCRIPTION"].startswith("For "), (subject, event)


def test_a_hindi_guardians_calendar_file_names_the_dependent_in_hindi(world):
    db.session.get(User, world.patient).language = "hi"
    db.session.commit()
    for subject, event in _confirm_move_and_cancel(world, dependent=True):
        assert event["SUMMARY"].startswith("Little One के लिए "), (subject, event["SUMMARY"])
        assert event["DESCRIPTION"].startswith("Little One के लिए\\n"), (subject, event)
        assert " for " not in event["SUMMARY"] + event["DESCRIPTION"]


def test_the_meeting_links_calendar_update_names_the_dependent(world):
    db.session.get(Service, world.consult).mode = "ONLINE"
    db.session.commit()
    booking = make_booking(world, NOW + timedelta(days=2), dependent=True)
    on_booking_confirmed(db.session.get(IndividualBooking, booking).master_id)
    db.session.commit()
    doctor = db.session.get(User, world.doctor_users[0])
    visits.set_meet_link(doctor, booking, "https://meet.google.com/abc-defg-hij")
    [_confirmation, (_subject, update)] = _calendars()
    assert "Little One" in update["SUMMARY"] and "Little One" in update["DESCRIPTION"]
