"""A move's locks in one order with every other claim writer's (PostgreSQL): the lock on
the people's time (``claims.lock_subjects``) before the wallet's row and the fee
document's number. A wallet or desk move took the fee's number (``RF/``, one counter row
for the whole clinic) and the patient's wallet row first, then the lock on the time; an
online fee applied onto a free time, and a late payment reviving a visit with a wallet
part, take the lock on the time first, then the same counter or wallet. Each pair is
forced here: the wallet move held at the point where the other must wait, then let go."""

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal.accounts.models import User
from portal.booking import payment_events, reschedule_payment, visits
from portal.booking import reschedule as rs
from portal.booking.models import IndividualBooking, MasterBooking, SlotClaim
from portal.booking.tasks import expire_holds
from portal.extensions import db
from portal.ledger.check import verify_ledger
from portal.payments.models import Payment
from tests.booking.factories import NOW, at, build_world, credit_wallet, quoted_checkout
from tests.booking.factories import start_gateway as gateway_for
from tests.refunds.helpers import book_and_pay, move_paid_at_gateway, quoted_move
from tests.threads import run_together, wait_for_lock_waiters

pytestmark = pytest.mark.postgres


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def gateway(pg_app):
    gw = gateway_for(pg_app, deliver_webhooks=False)
    yield gw
    gw.close()


def _outcome(x):
    """A result, or an error with what it was raised over (a deadlock shows as 40P01)."""
    if not isinstance(x, Exception):
        return x
    over = x.__cause__ or x.__context__
    return f"error: {x!r}" + (f" over {str(over)[:200]!r}" if over is not None else "")


def _held_after_the_fee(monkeypatch, inside):
    """The wallet move, once its fee is posted (the fee's number and the wallet's row
    taken), waits until the other use case waits for a lock, then goes on."""
    real = rs.post_fee

    def post_fee(*args, **kwargs):
        txn = real(*args, **kwargs)
        if threading.current_thread().name == "wallet":
            inside.set()
            wait_for_lock_waiters(db.engine)
        return txn

    monkeypatch.setattr(rs, "post_fee", post_fee)


def _wallet_move(patient_id, item_id, new_start, inside):
    def body():
        threading.current_thread().name = "wallet"
        try:
            return quoted_move(
                db.session.get(User, patient_id), item_id, new_start, pay_with="wallet"
            ).reschedule.status
        finally:
            inside.set()

    return body


def test_a_wallet_move_and_an_online_fee_applied_onto_a_free_time_never_deadlock(
    pg_app, gateway, clock, monkeypatch
):
    """Patient 0's online fee for a move to day 7 at 11:00 is captured while its held
    time is no longer held (``_moved_to_free_slot``: the lock on doctor 0's time, then
    the fee's number); at the same moment patient 1 moves a booking with the same doctor,
    paying from the wallet (the fee's number, then the lock on doctor 0's time). Both
    move: neither is told its time was lost."""
    with pg_app.app_context():
        world = build_world()
        paid = move_paid_at_gateway(world, gateway, clock)  # patient 0, doctor 0
        # The held time let go while the request still waits for its fee (the state
        # ``_moved_to_free_slot`` serves): the capture moves onto the time if it is free.
        db.session.execute(
            sa.update(SlotClaim)
            .where(SlotClaim.reschedule_id == paid.resched_id)
            .values(live=False)
        )
        db.session.commit()
        other = db.session.get(User, world.patients[1])
        item = book_and_pay(
            world, other, gateway, [(world.consult, [world.doctors[0]], at(4, 12))]
        ).items[0]
        credit_wallet(other.id, 10_000_00)
        other_id, item_id = other.id, item.id
        db.session.remove()
    inside = threading.Event()
    _held_after_the_fee(monkeypatch, inside)

    def capture():
        inside.wait(10)
        return reschedule_payment.payment_captured(
            paid.resched_id, paid.payment_id, paid.fee
        ).status

    results = [
        _outcome(r)
        for r in run_together(pg_app, _wallet_move(other_id, item_id, at(7, 14), inside), capture)
    ]
    with pg_app.app_context():
        starts = {
            b.id: b.start_at
            for b in db.session.scalars(
                sa.select(IndividualBooking).where(
                    IndividualBooking.id.in_([paid.item_id, item_id])
                )
            )
        }
        problems = verify_ledger()
        db.session.remove()
    assert results == ["DONE", "DONE"], results
    assert starts == {paid.item_id: at(7, 11), item_id: at(7, 14)}
    assert problems == []


def test_a_wallet_move_and_a_late_payment_with_a_wallet_part_never_deadlock(
    pg_app, gateway, clock, monkeypatch
):
    """A patient's visit paid partly from the wallet ran out of time before the rest was
    captured (the sweep expired it); the capture then revives it (the lock on the
    patient's time, then the wallet's row, to take the wallet part again). At the same
    moment the patient moves another booking, paying from the wallet (the wallet's row,
    then the lock on the patient's time). Both go through."""
    with pg_app.app_context():
        world = build_world()
        patient = db.session.get(User, world.patients[0])
        booked = book_and_pay(
            world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))]
        ).items[0]
        credit_wallet(patient.id, 10_000_00)
        clock.move_to(at(4, 10) - timedelta(hours=60))  # a move now costs a fee
        late = visits.add_item(
            patient,
            patient_id=patient.id,
            service_id=world.consult,
            provider_ids=[world.doctors[1]],
            clinic_id=world.clinic,
            start_at=at(3, 10),
        )
        result = quoted_checkout(
            patient, late.master_id, 100_00, callback_url="http://portal.test/cb"
        )
        payment_id, order_id = result.payment.id, result.payment.razorpay_order_id
        clock.shift(timedelta(minutes=31))
        assert expire_holds() == 1
        captured = gateway.pay(order_id)["razorpay_payment_id"]  # webhooks not delivered
        amount = db.session.get(Payment, payment_id).amount
        patient_id, booked_id, late_visit = patient.id, booked.id, late.master_id
        db.session.commit()
        db.session.remove()
    inside = threading.Event()
    _held_after_the_fee(monkeypatch, inside)

    def capture():
        inside.wait(10)
        payment = db.session.get(Payment, payment_id)
        return payment_events.capture(
            payment, razorpay_payment_id=captured, amount=amount, method="upi"
        ).status

    results = [
        _outcome(r)
        for r in run_together(
            pg_app, _wallet_move(patient_id, booked_id, at(7, 11), inside), capture
        )
    ]
    with pg_app.app_context():
        moved = db.session.get(IndividualBooking, booked_id).start_at
        revived = db.session.get(MasterBooking, late_visit).status
        problems = verify_ledger()
        db.session.remove()
    assert results == ["DONE", "CONFIRMED"], results
    assert (moved, revived) == (at(7, 11), "CONFIRMED")
    assert problems == []
