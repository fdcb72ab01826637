"""A clinic's new time zone moves every provider's weekly hours there (they are wall-clock
times in the clinic's zone), not only the clinic's opening hours (a review finding: the
change was refused over a booking it left outside the clinic's hours, but accepted over one
it left outside the provider's own weekly hours, which the claims' trigger and the hours
rule treat the same as a clinic closed then). Now refused too, naming the booking."""

from datetime import time
from zoneinfo import ZoneInfo

import pytest

from portal.booking import visits
from portal.booking.models import MasterBooking
from portal.catalog.checks import ValidationError
from portal.catalog.clinics import update_clinic
from portal.catalog.models import Availability, Clinic
from portal.domain.slots import within_weekly_hours
from portal.extensions import db
from tests.booking.factories import at, quoted_desk_payment

WIDE = {d: (time(7), time(20)) for d in range(5)}


def test_a_new_time_zone_leaving_a_booking_outside_the_doctors_hours_is_refused(world, users):
    admin = users(world.admin)
    update_clinic(admin, world.clinic, hours=WIDE)  # widened: the doctor still works 9–18
    patient = users(world.patients[0])
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),  # Tuesday 10:00 IST = 08:30 in Dubai: the clinic open, the doctor not
    )
    quoted_desk_payment(admin, item.master_id, "R-1")  # paid: a booking (a hold is apart)
    windows = [
        (a.weekday, a.start_time, a.end_time)
        for a in db.session.query(Availability).filter_by(
            provider_id=world.doctors[0], clinic_id=world.clinic
        )
    ]
    dubai = ZoneInfo("Asia/Dubai")
    assert not within_weekly_hours(item.start_at, item.end_at, dubai, windows)
    with pytest.raises(ValidationError) as exc:
        update_clinic(admin, world.clinic, timezone="Asia/Dubai")
    message = exc.value.errors["timezone"]
    number = db.session.get(MasterBooking, item.master_id).number
    assert message.startswith(
        "There is 1 booking ahead at this clinic that the new time zone leaves outside its "
        "provider's weekly hours here (Tue 02 Jun 2026, 10:00, visit " + number + ")."
    ), message
    db.session.expire_all()
    assert db.session.get(Clinic, world.clinic).timezone == "Asia/Kolkata"


def test_a_new_time_zone_keeping_bookings_inside_everyones_hours_is_accepted(world, users):
    """Kolkata to Colombo (the same offset): nothing moves, the change is saved."""
    admin = users(world.admin)
    patient = users(world.patients[0])
    visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    update_clinic(admin, world.clinic, timezone="Asia/Colombo")
    db.session.expire_all()
    assert db.session.get(Clinic, world.clinic).timezone == "Asia/Colombo"
