"""A clinic's deactivation over a hold whose time ran out before the expiry sweep reached
it (a review finding): the deactivation did not count it (``live_bookings_at_clinic``:
``hold_expires_at > now``), yet its items were still SCHEDULED, its claims live and its
order PENDING, so a capture then confirmed it as usual (``payment_events.capture``; no
claim is written, so the claims' trigger never saw it): the patient was booked at a clinic
deactivated a minute before. The clinic's change now releases such holds first
(``holds.release_stale_at_clinic``): the capture is a late payment, to the wallet."""

from datetime import timedelta

from portal.booking import checkout, visits
from portal.booking.models import IndividualBooking, MasterBooking
from portal.catalog.availability import add_leave
from portal.catalog.clinics import update_clinic
from portal.catalog.models import Clinic, Provider
from portal.catalog.providers import update_provider
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from tests.booking.factories import at, quoted_checkout


def test_a_visit_paid_just_after_its_hold_ran_out_is_not_confirmed_at_a_closed_clinic(
    world, users, gateway, clock
):
    patient = users(world.patients[0])
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(3, 11),
    )
    result = quoted_checkout(patient, item.master_id, 0, callback_url="http://portal.test/cb")
    order_id = result.payment.razorpay_order_id
    expires = db.session.get(MasterBooking, item.master_id).hold_expires_at
    clock.move_to(expires + timedelta(seconds=30))  # the sweep (each minute) has not run yet
    update_clinic(users(world.admin), world.clinic, active=False)  # accepted: nothing "live"
    checkout.complete_checkout_callback(gateway.pay(order_id))
    gateway.deliver()
    db.session.expire_all()
    booking = db.session.get(IndividualBooking, item.id)
    clinic = db.session.get(Clinic, world.clinic)
    assert not (clinic.active is False and booking.status == "CONFIRMED"), (
        f"booking {booking.status} at {booking.start_at} at an inactive clinic"
    )
    assert booking.status == "EXPIRED"
    assert balance(chart.patient_wallet(patient.id)) == booking.total  # the late payment


def _ran_out_then_paid(world, users, gateway, clock, change):
    """A checkout whose hold ran out a moment before ``change`` (the sweep not run yet),
    paid after it: the booking as the capture left it."""
    patient = users(world.patients[0])
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(3, 11),
    )
    result = quoted_checkout(patient, item.master_id, 0, callback_url="http://portal.test/cb")
    expires = db.session.get(MasterBooking, item.master_id).hold_expires_at
    clock.move_to(expires + timedelta(seconds=30))
    change(users(world.admin))  # accepted: the stale hold released first, nothing live
    checkout.complete_checkout_callback(gateway.pay(result.payment.razorpay_order_id))
    gateway.deliver()
    db.session.expire_all()
    booking = db.session.get(IndividualBooking, item.id)
    assert balance(chart.patient_wallet(patient.id)) == booking.total  # the late payment
    return booking


def test_a_visit_paid_just_after_its_hold_ran_out_is_not_confirmed_with_a_deactivated_doctor(
    world, users, gateway, clock
):
    """The same hole was in a provider's deactivation (``catalog.checks``)."""
    booking = _ran_out_then_paid(
        world,
        users,
        gateway,
        clock,
        lambda admin: update_provider(
            admin, world.doctors[0], active=False, registration_no="KMC-4242"
        ),
    )
    assert db.session.get(Provider, world.doctors[0]).active is False
    assert booking.status == "EXPIRED"


def test_a_visit_paid_just_after_its_hold_ran_out_is_not_confirmed_over_the_doctors_leave(
    world, users, gateway, clock
):
    """And in a provider's leave."""
    booking = _ran_out_then_paid(
        world,
        users,
        gateway,
        clock,
        lambda admin: add_leave(admin, world.doctors[0], at(3, 9), at(3, 18)),
    )
    assert booking.status == "EXPIRED"
