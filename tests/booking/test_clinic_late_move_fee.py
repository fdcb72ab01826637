"""A late fee for a move at a clinic whose hours were narrowed meanwhile (a review
finding): the clinic's check read a move's held new time only while its checkout had not
expired (``Reschedule.expires_at > now``), but until the expiry sweep ran, a fee the
gateway captured late still moved the booking onto the held claims
(``reschedule_payment.payment_captured``: ``_holds`` -> ``move``, which the claims' trigger
does not see). The clinic's change now releases such a move first (EXPIRED, its hold
released): the fee goes to the wallet and the booking stays where it was."""

from datetime import time
from zoneinfo import ZoneInfo

from portal.booking import reschedule_payment
from portal.booking.models import IndividualBooking, Reschedule
from portal.catalog.clinics import update_clinic
from portal.catalog.models import Clinic
from portal.domain.slots import within_weekly_hours
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay, hours, quoted_move

START = at(4, 10)  # Friday 5 June 2026, 10:00 IST
NEW = at(7, 11)  # Monday 8 June 2026, 11:00 IST
WEEK = {d: (time(9), time(18)) for d in range(5)}


def test_a_late_fee_does_not_move_the_booking_outside_narrowed_hours(world, users, gateway, clock):
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], START)])
    item = visit.items[0]
    clock.move_to(START - hours(60))
    result = quoted_move(
        patient, item.id, NEW, pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    )
    order_id = result.reschedule.razorpay_order_id
    clock.move_to(result.reschedule.expires_at + hours(0, 1))  # the sweep has not run yet
    # Mondays from 12:00: the booking's own time (Friday 10:00) is inside; accepted.
    update_clinic(users(world.admin), world.clinic, hours={**WEEK, 0: (time(12), time(18))})
    reschedule_payment.complete_callback(gateway.pay(order_id))
    gateway.deliver()
    db.session.expire_all()
    booking = db.session.get(IndividualBooking, item.id)
    clinic = db.session.get(Clinic, world.clinic)
    opening = [(d, o, c) for d, (o, c) in clinic.business_hours().items()]
    assert within_weekly_hours(
        booking.start_at, booking.end_at, ZoneInfo(clinic.timezone), opening
    ), f"booking moved to {booking.start_at}, outside the clinic's new hours"
    assert booking.start_at == START
    resched = db.session.get(Reschedule, result.reschedule.id)
    assert resched.status == "EXPIRED"
    assert balance(chart.patient_wallet(patient.id)) == resched.total  # the late fee
