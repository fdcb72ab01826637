"""The booking horizon (``portal.domain.slots.BOOK_DAYS_AHEAD``): a start is bookable only on
a day at the clinic no later than the last day a free-times list can show. Every path that
takes a slot refuses the day after it, writing nothing, and takes the last day: the
patient's hold, the desk's booking, an item added to a visit, a move (the patient's and an
admin's, override or not), a rebooking. (A crafted start in 2099 was booked: no check
looked at the distance.)"""

from datetime import datetime, time, timedelta

import pytest
import sqlalchemy as sa

from portal.booking import reschedule as rs
from portal.booking import visits
from portal.booking.errors import BookingError
from portal.booking.models import IndividualBooking, MasterBooking, Reschedule, SlotClaim
from portal.catalog.slots import team_next_free_slots
from portal.db import clinic_today
from portal.domain.slots import BOOK_DAYS_AHEAD, LIST_DAYS_AHEAD, LIST_SPAN_DAYS
from portal.domain.slots import last_bookable_day as horizon_of
from portal.extensions import db
from tests.booking.factories import IST, NOW
from tests.refunds.helpers import book_and_pay, quoted_cancel, quoted_move

MESSAGE = f"Appointments can be booked at most {BOOK_DAYS_AHEAD} days ahead"


def local(day, hh, mm=0):
    return datetime.combine(day, time(hh, mm), tzinfo=IST)


@pytest.fixture
def horizon(clock):
    """(the last bookable day, the day after), both weekdays (the world's clinic is open
    Monday to Friday): the clock travels whole days from NOW until they are. The clinic's
    today is read from the app's clock, whatever the hour."""
    for shift in range(7):
        if horizon_of(NOW.date() + timedelta(days=shift)).weekday() <= 3:
            clock.move_to(NOW + timedelta(days=shift))
            break
    last = horizon_of(clinic_today())
    assert last.weekday() <= 3 and last == clinic_today() + timedelta(days=BOOK_DAYS_AHEAD)
    return last, last + timedelta(days=1)


def _counts():
    return tuple(
        db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (MasterBooking, IndividualBooking, SlotClaim, Reschedule)
    )


def _refused(call):
    """``call`` is refused with the horizon's message on the start, and writes nothing."""
    before = _counts()
    with pytest.raises(BookingError) as err:
        call()
    assert (err.value.message, err.value.field) == (MESSAGE, "start_at")
    db.session.rollback()
    assert _counts() == before


def _hold(actor, world, start, patient_id=None, **kw):
    return visits.add_item(
        actor,
        patient_id=patient_id or actor.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=start,
        **kw,
    )


def test_the_patients_hold_stops_at_the_horizon(world, users, horizon):
    last, beyond = horizon
    patient = users(world.patients[0])
    _refused(lambda: _hold(patient, world, local(beyond, 10)))
    _refused(lambda: _hold(patient, world, local(beyond, 0, 30)))  # just past midnight
    _refused(lambda: _hold(patient, world, datetime(2099, 6, 1, 10, tzinfo=IST)))
    item = _hold(patient, world, local(last, 17, 30))  # the last slot of the last day
    assert item.status == "SCHEDULED" and item.start_at == local(last, 17, 30)


def test_the_desk_booking_stops_at_the_horizon(world, users, horizon):
    last, beyond = horizon
    admin, patient = users(world.admin), users(world.patients[0])
    _refused(lambda: _hold(admin, world, local(beyond, 10), patient_id=patient.id))
    item = _hold(admin, world, local(last, 10), patient_id=patient.id)
    assert item.visit.channel == "DESK"


def test_an_item_added_to_a_visit_stops_at_the_horizon(world, users, horizon):
    last, beyond = horizon
    patient = users(world.patients[0])
    first = _hold(patient, world, local(clinic_today() + timedelta(days=1), 12))
    visit_id = first.master_id
    _refused(lambda: _hold(patient, world, local(beyond, 10), visit_id=visit_id))
    _refused(lambda: _hold(patient, world, local(beyond, 10), join_open_visit=True))
    _hold(patient, world, local(last, 10), visit_id=visit_id)
    assert len(db.session.get(MasterBooking, visit_id).items) == 2


def _booked(world, users, gateway):
    """A paid booking 5 days on (more than 72 hours: its move costs nothing)."""
    patient = users(world.patients[0])
    day = clinic_today() + timedelta(days=5)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    visit = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], local(day, 10))]
    )
    return patient, visit.items[0]


def test_a_patients_move_stops_at_the_horizon(world, users, gateway, horizon):
    last, beyond = horizon
    patient, item = _booked(world, users, gateway)
    start = item.start_at
    for pay_with in (None, "wallet", "gateway"):
        _refused(
            lambda pay_with=pay_with: quoted_move(
                patient, item.id, local(beyond, 10), pay_with=pay_with, callback_url="http://t/cb"
            )
        )
    assert db.session.get(IndividualBooking, item.id).start_at == start
    assert quoted_move(patient, item.id, local(last, 10)).moved
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item.id).start_at == local(last, 10)


def test_an_admins_move_stops_at_the_horizon_override_or_not(world, users, gateway, horizon):
    last, beyond = horizon
    _, item = _booked(world, users, gateway)
    admin = users(world.admin)
    _refused(lambda: quoted_move(admin, item.id, local(beyond, 10)))
    _refused(lambda: quoted_move(admin, item.id, local(beyond, 10), admin_override=True))
    assert quoted_move(admin, item.id, local(last, 11), admin_override=True).moved


def test_a_rebooking_stops_at_the_horizon(world, users, gateway, horizon):
    last, beyond = horizon
    patient, item = _booked(world, users, gateway)
    quoted_cancel(patient, item.master_id, [item.id])
    _refused(lambda: rs.rebook(patient, item.id, local(beyond, 10)))
    assert rs.rebook(patient, item.id, local(last, 10)).start_at == local(last, 10)


def test_every_time_a_list_shows_is_bookable_and_none_beyond(world, users, horizon):
    """The longest list (LIST_SPAN_DAYS from the furthest day a list starts on) ends on the
    horizon's day, its last time is bookable; a list asked to run further stops there."""
    last, beyond = horizon
    from portal.catalog.models import Clinic, Provider, Service

    args = (
        [db.session.get(Provider, world.doctors[0])],
        db.session.get(Service, world.consult),
        db.session.get(Clinic, world.clinic),
    )
    furthest = clinic_today() + timedelta(days=LIST_DAYS_AHEAD)
    listed = team_next_free_slots(*args, furthest, days=LIST_SPAN_DAYS, limit=0)
    assert listed[-1] == local(last, 17, 30)
    assert team_next_free_slots(*args, furthest, days=LIST_SPAN_DAYS + 7, limit=0) == listed
    assert team_next_free_slots(*args, beyond, days=1, limit=0) == []
    assert _hold(users(world.patients[0]), world, listed[-1]).start_at == listed[-1]


def test_the_checks_over_bookings_look_well_past_the_horizon(world, users, horizon):
    """A deactivation looks ``catalog.checks.AHEAD`` ahead for bookings in its way: ten
    times the horizon or more, so a booking on the last bookable day is seen (and so were
    those made before the horizon, up to the margin)."""
    from portal.catalog.checks import AHEAD, ValidationError
    from portal.catalog.providers import update_provider

    assert 10 * timedelta(days=BOOK_DAYS_AHEAD) <= AHEAD
    last, _ = horizon
    _hold(users(world.patients[0]), world, local(last, 17, 30))
    with pytest.raises(ValidationError) as exc:
        update_provider(users(world.admin), world.doctors[0], active=False)
    # An unpaid hold there: named as one, with this provider ahead.
    assert "1 patient is paying for a time with this provider ahead" in str(exc.value.errors)
