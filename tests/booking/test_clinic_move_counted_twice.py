"""A booking whose move to a new time at the same clinic waits for its fee is one booking
to the administrator (a review finding: the clinic's refusal counted and listed it twice,
its own time and the new time held, "There are 2 bookings ahead ... visit V…; visit V…").
It is listed once, with where it is moving to."""

from datetime import time

import pytest

from portal.booking.models import MasterBooking
from portal.catalog.checks import ValidationError
from portal.catalog.clinics import update_clinic
from portal.extensions import db
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay, hours, quoted_move

START = at(4, 10)  # Friday 5 June 2026, 10:00 IST
NEW = at(7, 11)  # Monday 8 June 2026, 11:00 IST


def test_a_booking_with_its_move_pending_is_one_booking_in_the_refusal(
    world, users, gateway, clock
):
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], START)])
    item = visit.items[0]
    clock.move_to(START - hours(60))
    quoted_move(
        patient, item.id, NEW, pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    )
    number = db.session.get(MasterBooking, item.master_id).number
    with pytest.raises(ValidationError) as exc:
        update_clinic(users(world.admin), world.clinic, active=False)
    message = exc.value.errors["active"]
    assert message.startswith("There is 1 booking ahead at this clinic"), message
    assert message.count(number) == 1, message
    assert f"Fri 05 Jun 2026, 10:00, visit {number}, moving to Mon 08 Jun 2026, 11:00" in message


def test_a_move_held_outside_narrowed_hours_refuses_them_once(world, users, gateway, clock):
    """Only the held new time is outside the new hours: refused over, once, as a hold."""
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], START)])
    item = visit.items[0]
    clock.move_to(START - hours(60))
    quoted_move(
        patient, item.id, NEW, pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    )
    number = db.session.get(MasterBooking, item.master_id).number
    week = {d: (time(9), time(18)) for d in range(5)}
    with pytest.raises(ValidationError) as exc:
        update_clinic(users(world.admin), world.clinic, hours={**week, 0: (time(12), time(18))})
    message = exc.value.errors["hours"]
    # Only the new time held while its fee is paid is in the way: a hold, which lapses with
    # the fee's checkout (nothing to cancel), named once with its booking.
    assert message.startswith("1 patient is paying for a time at this clinic"), message
    assert message.count(number) == 1, message
    assert f"visit {number}, moving to Mon 08 Jun 2026, 11:00); the hold lapses at" in message
