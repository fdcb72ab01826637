"""Cancelling a booking ends its unpaid move (a ``Reschedule`` PENDING_PAYMENT: the fee's
checkout open, the new time held), in the cancellation's own unit of work, whoever
cancels: the patient (one item or the whole visit), the provider, an administrator. Before,
the move stayed open: a fee declined afterwards told the patient "<time> is held for you
until …: choose it again under Reschedule to pay the fee" of a cancelled appointment, and
the visit stayed among the account's unpaid business until the sweep (review finding). A
fee paid after the cancel goes to the wallet, once."""

import re

import pytest
import sqlalchemy as sa

from portal.booking import holds, queries, reschedule_payment
from portal.booking.models import Reschedule, SlotClaim
from portal.booking.prices import wallet_balance
from portal.catalog.models import Provider
from portal.extensions import db
from tests.booking.factories import at
from tests.refunds.helpers import (
    book_and_pay,
    hours,
    ledger_kinds,
    login,
    quoted_admin_cancel,
    quoted_cancel,
    quoted_move,
    quoted_provider_cancel,
    with_known_passwords,
)

START = at(4, 10)
NEW = at(7, 11)
CALLBACK = "http://portal.test/me/reschedules/__ID__/paid"


def _pending_move(world, users, gateway, clock, slots=None):
    """A paid visit (one consultation at ``START`` unless ``slots``), the clock 60 h before,
    a move of its first item to ``NEW`` asked with the fee paid online: (patient, visit,
    the move's row)."""
    patient = users(world.patients[0])
    visit = book_and_pay(
        world, patient, gateway, slots or [(world.consult, [world.doctors[0]], START)]
    )
    clock.move_to(START - hours(60))
    moved = quoted_move(patient, visit.items[0].id, NEW, pay_with="gateway", callback_url=CALLBACK)
    assert moved.reschedule.status == "PENDING_PAYMENT"
    return patient, visit, moved.reschedule


def _held(reschedule_id):
    return db.session.scalars(
        sa.select(SlotClaim).where(
            SlotClaim.reschedule_id == reschedule_id, SlotClaim.live.is_(True)
        )
    ).all()


def test_a_declined_fee_of_a_cancelled_booking_does_not_say_its_time_is_held(
    app, world, users, gateway, clock
):
    """The patient starts paying a move's fee online, cancels the appointment in another
    tab (its claims, the held new time's too, are released), then declines the fee at the
    checkout. The return tells them "Mon 08 Jun 2026, 11:00 IST is held for you until …:
    choose it again under Reschedule to pay the fee", of an appointment that is cancelled
    and a time held for no one: the cancellation left the move PENDING_PAYMENT."""
    with_known_passwords()
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], START)])
    item_id = visit.items[0].id
    clock.move_to(START - hours(60))
    moved = quoted_move(
        patient,
        item_id,
        NEW,
        pay_with="gateway",
        callback_url="http://portal.test/me/reschedules/__ID__/paid",
    )
    resched_id, order_id = moved.reschedule.id, moved.reschedule.razorpay_order_id
    quoted_cancel(patient, visit.id, [item_id])
    db.session.expire_all()
    held = db.session.scalars(
        sa.select(SlotClaim).where(SlotClaim.reschedule_id == resched_id, SlotClaim.live.is_(True))
    ).all()
    assert held == []  # the cancellation let the held time go
    fields = gateway.pay(order_id, outcome="failure")
    db.session.commit()
    client = app.test_client()
    login(client, patient.email)
    answer = client.get(f"/me/reschedules/{resched_id}/paid", query_string=fields)
    page = client.get(answer.location).get_data(as_text=True)
    told = re.findall(r'<p class="flash flash-\w+" role="status">([^<]*)</p>', page)
    assert told and not any("is held for you" in t for t in told), told
    assert db.session.get(Reschedule, resched_id).status != "PENDING_PAYMENT"


def _by_patient(world, users, visit, item_id):
    quoted_cancel(users(world.patients[0]), visit.id, [item_id])


def _by_provider(world, users, visit, item_id):
    doctor = users(db.session.get(Provider, world.doctors[0]).user_id)  # ids are providers'
    quoted_provider_cancel(doctor, item_id, "Called away to surgery")


def _by_admin(world, users, visit, item_id):
    quoted_admin_cancel(users(world.admin), item_id, "Asked by phone", mode="clinic")


@pytest.mark.parametrize("cancel", [_by_patient, _by_provider, _by_admin])
def test_every_cancellation_ends_the_bookings_unpaid_move(world, users, gateway, clock, cancel):
    patient, visit, resched = _pending_move(world, users, gateway, clock)
    assert queries.open_business(patient.id)[1] == [visit.number]  # the fee's checkout
    cancel(world, users, visit, visit.items[0].id)
    db.session.expire_all()
    row = db.session.get(Reschedule, resched.id)
    assert row.status == "EXPIRED"
    assert row.failure_reason == holds.MSG_BOOKING_CANCELLED
    assert _held(resched.id) == []
    assert holds.fee_hold_left(row) is None  # nothing held, nothing to choose again
    assert queries.open_business(patient.id) == ([], [])


def test_cancelling_a_whole_visit_ends_each_items_unpaid_move(world, users, gateway, clock):
    slots = [
        (world.consult, [world.doctors[0]], START),
        (world.consult, [world.doctors[1]], at(4, 12)),
    ]
    patient, visit, first = _pending_move(world, users, gateway, clock, slots)
    second = quoted_move(
        patient, visit.items[1].id, at(7, 14), pay_with="gateway", callback_url=CALLBACK
    ).reschedule
    quoted_cancel(patient, visit.id, [i.id for i in visit.items])
    db.session.expire_all()
    for row in (db.session.get(Reschedule, first.id), db.session.get(Reschedule, second.id)):
        assert (row.status, row.failure_reason) == ("EXPIRED", holds.MSG_BOOKING_CANCELLED)
        assert _held(row.id) == []
    assert queries.open_business(patient.id) == ([], [])


def test_a_fee_paid_after_the_cancel_goes_to_the_wallet_once(app, world, users, gateway, clock):
    """The checkout is still open at Razorpay after the cancel: a fee paid there moves
    nothing and is put in the wallet, whichever of the return and the webhook comes first,
    however often (the ledger's balance is checked after every test here)."""
    with_known_passwords()
    patient, visit, resched = _pending_move(world, users, gateway, clock)
    quoted_cancel(patient, visit.id, [visit.items[0].id])  # the full refund, to the card
    db.session.expire_all()
    before = wallet_balance(patient.id)
    fields = gateway.pay(resched.razorpay_order_id)
    db.session.commit()
    client = app.test_client()
    login(client, patient.email)
    answer = client.get(f"/me/reschedules/{resched.id}/paid", query_string=fields)
    page = client.get(answer.location).get_data(as_text=True)
    told = re.findall(r'<p class="flash flash-\w+" role="status">([^<]*)</p>', page)
    assert told == [
        "The appointment was cancelled before the fee was paid; a payment for it goes to your "
        "wallet."
    ]
    gateway.deliver()  # the webhook, after the return
    reschedule_payment.complete_callback(fields)  # and the return again
    db.session.expire_all()
    row = db.session.get(Reschedule, resched.id)
    assert row.status == "EXPIRED" and row.razorpay_payment_id == fields["razorpay_payment_id"]
    assert wallet_balance(patient.id) == before + row.total
    [credit] = ledger_kinds(reschedule_payment.UNAPPLIED)
    assert credit.idempotency_key == reschedule_payment.unapplied_key(
        row.id, fields["razorpay_payment_id"]
    )
    assert db.session.get(Reschedule, resched.id).visit.items[0].start_at == START
