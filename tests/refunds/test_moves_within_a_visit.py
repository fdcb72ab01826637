"""Moves within one visit (into a time another item left, or is leaving online), a
dependent's item moved by the guardian, an abandoned fee checkout (review B's
regression tests)."""

import pytest
import sqlalchemy as sa

from portal.booking import reschedule_payment, visits
from portal.booking.errors import BookingError, NotFound, SlotUnavailable
from portal.booking.models import (
    IndividualBooking,
    SlotClaim,
    patient_subject,
    provider_subject,
)
from portal.extensions import db
from tests.booking.factories import at, credit_wallet
from tests.refunds.helpers import book_and_pay, hours, quoted_move

START = at(4, 10)


def test_move_into_the_time_another_item_of_the_visit_just_left(world, users, gateway, clock):
    patient = users(world.patients[0])
    visit = book_and_pay(
        world,
        patient,
        gateway,
        [
            (world.consult, [world.doctors[0]], at(7, 10)),
            (world.lab, [world.lab_provider], at(7, 11)),
        ],
    )
    a, b = visit.items
    # free tier (> 72 h)
    quoted_move(patient, b.id, at(7, 15))
    res = quoted_move(patient, a.id, at(7, 11))
    assert res.moved


def test_move_into_the_time_another_item_of_the_visit_is_leaving_online(
    world, users, gateway, clock
):
    patient = users(world.patients[0])
    visit = book_and_pay(
        world,
        patient,
        gateway,
        [
            (world.consult, [world.doctors[0]], START),
            (world.lab, [world.lab_provider], at(4, 11)),
        ],
    )
    a, b = visit.items
    clock.move_to(START - hours(60))
    res = quoted_move(
        patient, b.id, at(4, 15), pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    )
    # b's new time held: a can't take 15:00 (patient busy), nor 11:00 (b still there)
    credit_wallet(patient.id, 100_000)
    with pytest.raises((BookingError, SlotUnavailable)):
        quoted_move(patient, a.id, at(4, 15), pay_with="wallet")
    with pytest.raises((BookingError, SlotUnavailable)):
        quoted_move(patient, a.id, at(4, 11), pay_with="wallet")
    reschedule_payment.complete_callback(gateway.pay(res.reschedule.razorpay_order_id))
    gateway.deliver()
    r = quoted_move(patient, a.id, at(4, 11), pay_with="wallet")
    assert r.moved


def test_dependents_item_moved_by_guardian(world, users, gateway, clock):
    patient = users(world.patients[0])
    item = book_and_pay(
        world,
        patient,
        gateway,
        [(world.consult, [world.doctors[0]], START)],
        dependent_id=world.child,
    ).items[0]
    clock.move_to(START - hours(60))
    credit_wallet(patient.id, 100_000)
    r = quoted_move(patient, item.id, at(4, 14), pay_with="wallet")
    assert r.moved
    # the child's claim moved
    live = db.session.scalars(sa.select(SlotClaim).where(SlotClaim.live.is_(True))).all()
    assert sorted(c.subject for c in live) == sorted(
        [provider_subject(world.doctors[0]), patient_subject(patient.id, world.child)]
    )
    assert {c.start_at for c in live} == {at(4, 14)}
    # another patient can't move the child's booking
    with pytest.raises(NotFound):
        quoted_move(users(world.patients[1]), item.id, at(4, 15), pay_with="wallet")


def test_abandoned_checkout_keeps_the_old_time_and_frees_the_new(world, users, gateway, clock):
    patient = users(world.patients[0])
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], START)]
    ).items[0]
    clock.move_to(START - hours(60))
    quoted_move(
        patient, item.id, at(4, 14), pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    )
    # other patient cannot book 14:00 now
    other = users(world.patients[1])
    with pytest.raises((BookingError, SlotUnavailable)):
        visits.add_item(
            other,
            patient_id=other.id,
            service_id=world.consult,
            provider_ids=[world.doctors[0]],
            clinic_id=world.clinic,
            start_at=at(4, 14),
        )
    db.session.rollback()
    clock.move_to(START - hours(59))  # 60 min later: the order has run out
    reschedule_payment.expire_reschedules()
    db.session.expire_all()
    other = users(world.patients[1])
    new = visits.add_item(
        other,
        patient_id=other.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(4, 14),
    )
    assert new.id
    it = db.session.get(IndividualBooking, item.id)
    assert it.start_at == START and it.status == "CONFIRMED"
    # old time still held by the booking
    other2 = users(world.patients[2])
    with pytest.raises((BookingError, SlotUnavailable)):
        visits.add_item(
            other2,
            patient_id=other2.id,
            service_id=world.consult,
            provider_ids=[world.doctors[0]],
            clinic_id=world.clinic,
            start_at=START,
        )
    db.session.rollback()
