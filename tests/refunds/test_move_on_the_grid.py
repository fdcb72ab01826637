"""A patient's move, and a rebooking, go only to a time the move page lists: a start on the
grid its free times are built on (the window's opening plus whole steps, the booking's own
length deciding the step), else "Choose one of the times shown" (422 on the page, in Hindi
there too), nothing charged, held or moved. The desk may move off the grid (decision,
docs/booking.md "The grid"). The hours refusal reads in Hindi on the patient's move page
and as POLICY.md words it on the admin's."""

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from flask_babel import refresh

from portal.booking import reschedule as rs
from portal.booking.errors import BookingError
from portal.booking.models import IndividualBooking, Reschedule
from portal.domain.slots import MSG_OFF_GRID
from portal.extensions import db
from tests.booking.factories import at
from tests.refunds.helpers import (
    book_and_pay,
    login,
    post_move,
    quoted_cancel,
    quoted_move,
    with_known_passwords,
)

START = at(4, 10)  # Friday 5 June 2026, 10:00 IST (four days ahead: a free move)
MONDAY = date(2026, 6, 8)


def _booked(world, users, gateway, service=None, providers=None):
    patient = users(world.patients[0])
    visit = book_and_pay(
        world,
        patient,
        gateway,
        [(service or world.consult, providers or [world.doctors[0]], START)],
    )
    return patient, visit.items[0]


def _unmoved(item_id):
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item_id).start_at == START
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Reschedule)) == 0


@pytest.mark.parametrize(
    "off", [at(7, 11, 15), at(7, 11) + timedelta(seconds=7)], ids=["11:15", "11:00:07"]
)
def test_a_patients_move_off_the_lists_grid_is_refused(world, users, gateway, clock, off):
    patient, item = _booked(world, users, gateway)
    assert off not in rs.free_slots(item, MONDAY, days=1, limit=50)
    with pytest.raises(BookingError) as refused:
        quoted_move(patient, item.id, off, pay_with="wallet")
    assert (refused.value.message, refused.value.field) == (MSG_OFF_GRID, "start_at")
    _unmoved(item.id)
    assert quoted_move(patient, item.id, at(7, 11), pay_with="wallet").moved


def test_the_grid_steps_by_the_bookings_own_length(world, users, gateway, clock):
    """A 15-minute blood test's list steps by 15 minutes: 11:15 is listed and movable to."""
    patient, item = _booked(world, users, gateway, world.lab, [world.lab_provider])
    assert at(7, 11, 15) in rs.free_slots(item, MONDAY, days=1, limit=50)
    assert quoted_move(patient, item.id, at(7, 11, 15), pay_with="wallet").moved


def test_the_desk_may_move_a_booking_off_the_grid(world, users, gateway, clock):
    """Decision: an operator fitting a patient in moves the booking to 11:15."""
    _, item = _booked(world, users, gateway)
    admin = users(world.admin)
    assert quoted_move(admin, item.id, at(7, 11, 15), pay_with="wallet").moved
    assert db.session.get(IndividualBooking, item.id).start_at == at(7, 11, 15)


def test_a_patients_rebooking_off_the_grid_is_refused(world, users, gateway, clock):
    patient, item = _booked(world, users, gateway)
    quoted_cancel(patient, item.master_id, [item.id])
    with pytest.raises(BookingError) as refused:
        rs.rebook(patient, item.id, at(7, 11, 15))
    assert refused.value.message == MSG_OFF_GRID
    assert rs.rebook(patient, item.id, at(7, 11)).start_at == at(7, 11)


def test_the_move_pages_refusals_in_hindi_and_at_the_desk_in_english(
    app, client, world, users, gateway, clock
):
    with_known_passwords()
    patient, item = _booked(world, users, gateway)
    item_id, email, admin_email = item.id, patient.email, users(world.admin).email
    db.session.remove()
    login(client, email)
    client.post("/language", data={"language": "hi", "next": "/"})
    refresh()  # the test's app context outlives the requests, and Babel's locale with it
    url = f"/me/bookings/{item_id}/reschedule"
    for start, hindi in (
        (at(7, 11, 15), "दिखाए गए समयों में से कोई एक चुनें"),
        (at(7, 8, 30), "अपॉइंटमेंट केवल 9 AM - 6 PM के बीच उपलब्ध हैं"),
    ):
        answer = post_move(client, url, {"slot": start.isoformat(), "pay_with": "wallet"})
        assert answer.status_code == 422
        assert hindi in answer.text
        assert "Choose one of the times shown" not in answer.text
        assert "Appointments only available" not in answer.text
    with app.app_context():
        _unmoved(item_id)
    client.post("/auth/logout")
    client.post("/language", data={"language": "en", "next": "/"})  # the browser's, not his
    refresh()
    login(client, admin_email)
    answer = post_move(
        client,
        f"/admin/bookings/{item_id}/reschedule",
        {"slot": at(7, 8, 30).isoformat(), "pay_with": "wallet"},
    )
    assert answer.status_code == 422
    assert "Appointments only available 9 AM - 6 PM" in answer.text
