"""A crafted start beyond the booking horizon (``domain.slots.BOOK_DAYS_AHEAD``) posted to
the patient's hold or typed into the desk's new visit is the horizon's message on the form
(422), in Hindi for a Hindi reader, and nothing is booked (it was a visit in 2099)."""

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal.booking.models import IndividualBooking
from portal.db import clinic_today, utcnow
from portal.domain.slots import BOOK_DAYS_AHEAD, last_bookable_day
from portal.extensions import db
from tests.web.booking.helpers import slot

MESSAGE = f"Appointments can be booked at most {BOOK_DAYS_AHEAD} days ahead"
HINDI = f"अपॉइंटमेंट अधिकतम {BOOK_DAYS_AHEAD} दिन आगे तक बुक किए जा सकते हैं"


@pytest.fixture
def still_clock():
    """The clock standing still (list it first): the horizon the test reads is the one the
    portal answers by (a run across IST midnight moved it a day between the two)."""
    with time_machine.travel(utcnow(), tick=False) as traveller:
        yield traveller


def _bookings(app):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(IndividualBooking))


def _last_weekday():
    """The last Monday–Friday on or before the last bookable day (the clinic's today)."""
    day = last_bookable_day(clinic_today())
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _hold_form(world, start):
    return {
        "provider": world.doc1,
        "service": world.consult,
        "clinic": world.clinic,
        "start": start.isoformat(),
        "person": "self",
        "referral": "",
    }


@pytest.mark.parametrize("days_beyond", [1, 30])
def test_a_crafted_hold_beyond_the_horizon_is_the_message_not_a_booking(
    still_clock, app, client, login, world, days_beyond
):
    login(world.patient)
    before = _bookings(app)
    beyond = last_bookable_day(clinic_today()) + timedelta(days=days_beyond)
    response = client.post("/me/book", data=_hold_form(world, slot(beyond, 10)))
    assert response.status_code == 422
    assert MESSAGE in response.get_data(as_text=True)
    far = client.post("/me/book", data=_hold_form(world, slot(date(2099, 6, 1), 10)))
    assert far.status_code == 422 and MESSAGE in far.get_data(as_text=True)
    assert _bookings(app) == before
    client.post("/language", data={"language": "hi", "next": "/me/"})
    hindi = client.post("/me/book", data=_hold_form(world, slot(beyond, 10)))
    assert hindi.status_code == 422
    assert HINDI in hindi.get_data(as_text=True) and MESSAGE not in hindi.get_data(as_text=True)
    assert _bookings(app) == before
    last = client.post("/me/book", data=_hold_form(world, slot(_last_weekday(), 10)))
    assert last.status_code == 303
    assert _bookings(app) == before + 1


def _desk_item(world, day):
    return {
        "service": world.consult,
        "providers": [world.doc1],
        "clinic": world.clinic,
        "date": day.isoformat(),
        "time": "10:00",
        "person": "self",
        "referral": "",
        "meet_link": "",
    }


def test_a_date_typed_at_the_desk_beyond_the_horizon_is_the_message(
    still_clock, app, client, login, world
):
    login(world.admin)
    before = _bookings(app)
    new = f"/admin/visits/new/{world.patient.id}"
    for day in (last_bookable_day(clinic_today()) + timedelta(days=1), date(2099, 6, 1)):
        response = client.post(new, data=_desk_item(world, day))
        assert response.status_code == 422
        assert MESSAGE in response.get_data(as_text=True)
    assert _bookings(app) == before
    made = client.post(new, data=_desk_item(world, world.day))
    assert made.status_code == 303
    visit_id = int(made.location.rstrip("/").split("/")[-1])
    beyond = last_bookable_day(clinic_today()) + timedelta(days=1)
    added = client.post(f"/admin/visits/{visit_id}/items", data=_desk_item(world, beyond))
    assert added.status_code == 422 and MESSAGE in added.get_data(as_text=True)
    assert _bookings(app) == before + 1
    last = client.post(f"/admin/visits/{visit_id}/items", data=_desk_item(world, _last_weekday()))
    assert last.status_code == 303
    assert _bookings(app) == before + 2
