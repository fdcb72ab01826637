"""An online visit's reminder mail says where it happens as its calendar entry does: the
meeting link, or "Online" until it has one, never the clinic's street address
(docs/notifications.md); an in-person visit keeps the clinic's address."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.booking.models import IndividualBooking
from portal.catalog.models import Service
from portal.extensions import db
from portal.notify.models import MailMessage
from portal.notify.reminders import schedule_reminders
from tests.notify.factories import NOW, make_booking


def _reminder_mail(world, *, online, meet_link=None):
    if online:
        db.session.get(Service, world.consult).mode = "ONLINE"
        db.session.commit()
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    db.session.get(IndividualBooking, booking).meet_link = meet_link
    schedule_reminders(booking)
    db.session.commit()
    with time_machine.travel(start - timedelta(hours=24), tick=False):
        jobs.run_periodic("notify.send_due_reminders")
    [mail] = db.session.scalars(
        sa.select(MailMessage).where(MailMessage.to == "patient@example.com")
    ).all()
    return mail


@pytest.mark.parametrize("meet_link", [None, "https://meet.example.com/abc-defg"])
def test_online_visit_reminder_does_not_send_the_patient_to_the_clinic(world, meet_link):
    mail = _reminder_mail(world, online=True, meet_link=meet_link)
    for part in (mail.text, mail.html):
        assert "100 Ft Rd" not in part
        assert (meet_link or "Online") in part


def test_in_person_reminder_gives_the_clinic_address(world):
    mail = _reminder_mail(world, online=False)
    assert "Indiranagar Clinic, 100 Ft Rd, Bengaluru" in mail.text
    assert "100 Ft Rd" in mail.html
