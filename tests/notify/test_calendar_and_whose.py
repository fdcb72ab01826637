"""The patient's calendar file says where an online visit is (its link, or "Online"; never
the clinic's street address), follows the meeting link when it is set later, and is in the
patient's language; a dependent's cancellation and move name the dependent."""

from datetime import timedelta

import sqlalchemy as sa

from portal.accounts.models import User
from portal.booking import visits
from portal.booking.models import IndividualBooking
from portal.catalog.models import Service
from portal.extensions import db
from portal.notify.models import MailMessage, Notification
from portal.notify.tasks import on_booking_cancelled, on_booking_confirmed, on_booking_rescheduled
from tests.notify.factories import NOW, make_booking

LINK = "https://meet.google.com/abc-defg-hij"


def _patient_mails():
    db.session.expire_all()
    return db.session.scalars(
        sa.select(MailMessage)
        .where(MailMessage.to == "patient@example.com")
        .order_by(MailMessage.id)
    ).all()


def _calendar(mail):
    """{name: value} of the one VEVENT in the mail's calendar file (lines unfolded)."""
    [attachment] = mail.attachments
    content = attachment["content"].replace("\r\n ", "")
    fields = {}
    for line in content.splitlines():
        name, _sep, value = line.partition(":")
        fields.setdefault(name.split(";")[0], value)
    return fields


def _online(world):
    db.session.get(Service, world.consult).mode = "ONLINE"
    db.session.commit()


def _confirmed(world, **kw):
    booking = make_booking(world, NOW + timedelta(days=2), **kw)
    on_booking_confirmed(db.session.get(IndividualBooking, booking).master_id)
    db.session.commit()
    return booking


def test_online_visit_calendar_file_does_not_send_the_patient_to_the_clinic_address(world):
    """No meeting link yet (the provider adds it later): LOCATION was the clinic's street
    address, "Indiranagar Clinic, 100 Ft Rd, Bengaluru", for a video call."""
    _online(world)
    _confirmed(world)
    [mail] = _patient_mails()
    assert _calendar(mail)["LOCATION"] == "Online"


def test_the_meeting_link_set_later_sends_the_updated_calendar_file_once_per_change(world):
    """The provider sets the link after the confirmation: the patient gets a notice with
    the link and the calendar file again (same UID, a higher SEQUENCE, LOCATION the link).
    Setting the same link again tells nothing; a new link is told again."""
    _online(world)
    booking = _confirmed(world)
    [confirmation] = _patient_mails()
    first = _calendar(confirmation)
    doctor = db.session.get(User, world.doctor_users[0])
    visits.set_meet_link(doctor, booking, LINK)
    [_, update] = _patient_mails()
    entry = _calendar(update)
    assert entry["UID"] == first["UID"]
    assert int(entry["SEQUENCE"]) > int(first["SEQUENCE"])
    assert entry["LOCATION"] == LINK
    [notice] = db.session.scalars(
        sa.select(Notification).where(
            Notification.user_id == world.patient, Notification.kind == "booking.meet_link"
        )
    ).all()
    assert LINK in notice.body, notice.body
    visits.set_meet_link(doctor, booking, LINK)  # unchanged: nothing to tell
    assert len(_patient_mails()) == 2
    admin = db.session.get(User, world.admin)
    visits.set_meet_link(admin, booking, "https://zoom.us/j/123456789")
    mails = _patient_mails()
    assert len(mails) == 3 and _calendar(mails[-1])["LOCATION"] == "https://zoom.us/j/123456789"


def test_no_calendar_update_for_a_visit_not_paid_yet(world):
    """A visit awaiting payment has sent no calendar file: its confirmation will carry
    the link."""
    _online(world)
    booking = make_booking(world, NOW + timedelta(days=2), status="SCHEDULED")
    visits.set_meet_link(db.session.get(User, world.admin), booking, LINK)
    assert _patient_mails() == []


def test_the_hindi_patients_calendar_file_is_in_hindi(world):
    """The confirmation mail was in Hindi, its calendar entry in English ("Consultation
    with Dr Doc 1 … Details: …": ics.event wrote fixed English words)."""
    db.session.get(User, world.patient).language = "hi"
    db.session.commit()
    _online(world)
    _confirmed(world)
    [mail] = _patient_mails()
    entry = _calendar(mail)
    assert " with " not in entry["DESCRIPTION"] and "Details:" not in entry["DESCRIPTION"]
    assert "विवरण:" in entry["DESCRIPTION"], entry["DESCRIPTION"]
    assert entry["LOCATION"] == "ऑनलाइन"


def _notice(user_id, kind):
    db.session.expire_all()
    return db.session.scalars(
        sa.select(Notification).where(Notification.user_id == user_id, Notification.kind == kind)
    ).one()


def test_a_cancellation_of_a_dependents_visit_names_the_dependent_to_the_guardian(world):
    """The confirmation and the reminders name the child; the cancellation named only the
    service, so a parent of two could not tell whose appointment it was."""
    booking = make_booking(world, NOW + timedelta(days=2), dependent=True)
    db.session.get(IndividualBooking, booking).status = "CANCELLED"
    on_booking_cancelled(booking, by="clinic", refund=52_950, reason="Doctor unwell")
    db.session.commit()
    notice = _notice(world.patient, "booking.cancelled")
    assert notice.title == "Cancelled: Consultation for Little One", notice.title


def test_a_move_of_a_dependents_visit_names_the_dependent_to_the_guardian(world):
    booking = make_booking(world, NOW + timedelta(days=2), dependent=True)
    on_booking_rescheduled(booking, old_start=NOW + timedelta(days=1))
    db.session.commit()
    notice = _notice(world.patient, "booking.rescheduled")
    assert notice.title == "Rescheduled: Consultation for Little One", notice.title


def test_the_patients_own_visit_is_named_by_its_service(world):
    booking = make_booking(world, NOW + timedelta(days=2))
    on_booking_cancelled(booking, by="clinic")
    db.session.commit()
    assert _notice(world.patient, "booking.cancelled").title == "Cancelled: Consultation"
