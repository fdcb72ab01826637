"""The patient home's "Upcoming visits": paid visits with an appointment still ahead,
soonest first (``booking.queries.open_and_upcoming_visits``)."""

from portal.booking.queries import open_and_upcoming_visits
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay, quoted_cancel


def _upcoming(patient):
    return open_and_upcoming_visits(patient.id)[1]


def test_a_visit_whose_appointment_passed_is_not_upcoming(world, users, gateway, clock):
    """Never marked started or completed (a no-show), yesterday's visit was still listed
    as upcoming (review finding)."""
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(1, 10))])
    assert [v.id for v in _upcoming(patient)] == [visit.id]
    clock.move_to(at(2, 12))
    assert _upcoming(patient) == []


def test_a_visit_of_two_days_shows_its_next_appointment(world, users, gateway, clock):
    """A visit whose first item is over stays upcoming for its next one, which the row
    shows."""
    patient = users(world.patients[0])
    visit = book_and_pay(
        world,
        patient,
        gateway,
        [
            (world.consult, [world.doctors[0]], at(1, 10)),
            (world.lab, [world.lab_provider], at(3, 11)),
        ],
    )
    clock.move_to(at(2, 9))
    [row] = _upcoming(patient)
    assert (row.id, row.first_start, row.item_count) == (visit.id, at(3, 11), 2)


def test_the_soonest_five_are_shown_not_the_newest_booked(world, users, gateway):
    """A visit tomorrow booked before five later ones was missing from the home (the list
    took the five booked last: review finding)."""
    patient = users(world.patients[0])
    soonest = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], at(1, 10))]
    )
    later = [
        book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(day, 10))])
        for day in (8, 2, 7, 3, 4)
    ]
    shown = [v.id for v in _upcoming(patient)]
    assert shown == [soonest.id] + [v.id for v in sorted(later, key=lambda v: v.first_start)][:4]


def test_a_cancelled_first_appointment_is_not_the_visits_first(world, users, gateway):
    """The home and "My visits" gave a cancelled lab test's time as the visit's first
    appointment (review finding, walking the demo)."""
    from portal.booking.queries import patient_visits_page

    patient = users(world.patients[0])
    visit = book_and_pay(
        world,
        patient,
        gateway,
        [
            (world.lab, [world.lab_provider], at(4, 10)),
            (world.consult, [world.doctors[0]], at(9, 11)),
        ],
    )
    quoted_cancel(patient, visit.id, [visit.items[0].id])
    [row] = _upcoming(patient)
    assert row.first_start == at(9, 11)
    [listed] = patient_visits_page(patient.id).items
    assert listed.first_start == at(9, 11)
    quoted_cancel(patient, visit.id, [visit.items[1].id])
    assert _upcoming(patient) == []
    [listed] = patient_visits_page(patient.id).items
    assert listed.first_start == at(4, 10)  # all off: the first of all
