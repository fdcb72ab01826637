"""Money after a move or a cancellation: reschedule fees given back when the provider or
the clinic cancels (not when the patient does), and further refunds on a cancelled
booking, which always wait for a second administrator."""

import pytest
import sqlalchemy as sa

from portal.booking import reschedule_payment
from portal.booking.errors import PermissionDenied
from portal.booking.models import IndividualBooking, Reschedule
from portal.domain.cancellation import MSG_OVERRIDE_NOTE
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.refunds import approvals as refunds_approvals
from portal.refunds import common as refunds_common
from portal.refunds import failed as refunds_failed
from portal.refunds import lookup as refunds_lookup
from portal.refunds import money as refunds_money
from portal.refunds import previews as refunds_previews
from portal.refunds.common import CancellationError
from portal.refunds.models import Refund
from tests.booking.factories import at, credit_wallet
from tests.refunds.helpers import (
    book_and_pay,
    hours,
    ledger_kinds,
    quoted_admin_cancel,
    quoted_cancel,
    quoted_move,
    quoted_provider_cancel,
    settle_refunds,
)

START, NEW = at(4, 10), at(7, 11)
PAID = 52_950  # ₹500 consultation + ₹25 platform fee + ₹4.50 GST on the platform fee
FEE_10 = 5_000 + 250 + 945  # 10 % penalty, 5 % platform fee on it, 18 % GST on both
SHARE_10 = 5_000 - 250  # the provider's part of the penalty, less 5 % commission


def _moved(world, users, gateway, clock, pay_with):
    """A consultation booked and paid online, then moved 60 h ahead (10 % tier)."""
    patient = users(world.patients[0])
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], START)]
    ).items[0]
    clock.move_to(START - hours(60))
    if pay_with == "gateway":
        result = quoted_move(
            patient, item.id, NEW, pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
        )
        reschedule_payment.complete_callback(gateway.pay(result.reschedule.razorpay_order_id))
        gateway.deliver()
    else:
        credit_wallet(patient.id, FEE_10)
        result = quoted_move(patient, item.id, NEW, pay_with="wallet")
    db.session.expire_all()
    resched = db.session.get(Reschedule, result.reschedule.id)
    assert resched.status == "DONE" and resched.total == FEE_10
    assert balance(chart.provider_payable(world.doctors[0])) == SHARE_10
    return patient, db.session.get(IndividualBooking, item.id), resched


def test_provider_cancellation_gives_back_an_online_fee_through_razorpay(
    world, users, gateway, clock
):
    patient, item, resched = _moved(world, users, gateway, clock, "gateway")
    doctor = users(db.session.get(IndividualBooking, item.id).providers[0].user_id)
    assert (
        refunds_previews.preview_admin(users(world.admin), item.id, "provider").fee_refund == FEE_10
    )
    quoted_provider_cancel(doctor, item.id, "Called to surgery")
    settle_refunds(gateway)
    rows = db.session.scalars(sa.select(Refund).order_by(Refund.id)).all()
    assert [(r.reschedule_id, r.destination, r.status, r.amount) for r in rows] == [
        (None, "GATEWAY", "PROCESSED", PAID),
        (resched.id, "GATEWAY", "PROCESSED", FEE_10),
    ]
    # One refund of each Razorpay payment: the visit's and the fee's own.
    at_sandbox = sorted(
        (r["payment_id"], r["amount"]) for r in gateway.sandbox.store.refunds.values()
    )
    assert at_sandbox == sorted(
        [(rows[0].razorpay_payment_id, PAID), (resched.razorpay_payment_id, FEE_10)]
    )
    # The provider's share of the fee is taken back; the penalty stands.
    assert balance(chart.provider_payable(world.doctors[0])) == -25_000
    assert balance(chart.COMMISSION_REVENUE) == 0
    assert len(ledger_kinds("reschedule_fee_refund")) == 1
    assert db.session.get(IndividualBooking, item.id).refunded_amount == PAID


def test_clinic_cancellation_gives_a_wallet_fee_back_to_the_wallet(world, users, gateway, clock):
    patient, item, resched = _moved(world, users, gateway, clock, "wallet")
    assert balance(chart.patient_wallet(patient.id)) == 0
    quoted_admin_cancel(
        users(world.admin), item.id, "Clinic closed for a fumigation", mode="clinic"
    )
    fee_row = db.session.scalars(sa.select(Refund).where(Refund.reschedule_id == resched.id)).one()
    assert (fee_row.destination, fee_row.status) == ("WALLET", "PROCESSED")
    assert balance(chart.patient_wallet(patient.id)) == FEE_10
    assert balance(chart.provider_payable(world.doctors[0])) == 0
    # Cancelling cannot happen twice, so neither can the fee refund.
    with pytest.raises(CancellationError):
        quoted_admin_cancel(users(world.admin), item.id, "Again", mode="clinic")
    assert len(ledger_kinds("reschedule_fee_refund")) == 1


def test_patient_cancellation_keeps_the_fee(world, users, gateway, clock):
    patient, item, resched = _moved(world, users, gateway, clock, "wallet")
    preview = refunds_previews.preview_cancellation(patient, item.master_id, [item.id])
    assert preview.items[0].fee_refund == 0
    quoted_cancel(patient, item.master_id, [item.id], prefer_wallet=True)
    assert not db.session.scalars(sa.select(Refund).where(Refund.reschedule_id.is_not(None))).all()
    assert balance(chart.provider_payable(world.doctors[0])) == SHARE_10


# --- further refunds -----------------------------------------------------------------------


def _cancelled_at_30_hours(world, users, gateway, clock):
    """Cancelled by the patient 30 h ahead: 75 % − ₹100 = ₹297.13 back, ₹232.37 kept."""
    patient = users(world.patients[0])
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], START)]
    ).items[0]
    clock.move_to(START - hours(30))
    quoted_cancel(patient, item.master_id, [item.id])
    db.session.expire_all()
    item = db.session.get(IndividualBooking, item.id)
    assert item.refunded_amount == 29_713
    return patient, item


def _second_admin():
    from portal.accounts.models import User

    admin2 = User(email="admin2@example.com", name="Admin Two", role="admin")
    db.session.add(admin2)
    db.session.commit()
    return admin2


def test_further_refund_waits_for_a_second_admin(world, users, gateway, clock):
    patient, item = _cancelled_at_30_hours(world, users, gateway, clock)
    admin, admin2 = users(world.admin), _second_admin()
    approval = refunds_approvals.request_further_refund(
        admin, item.id, 10_000, "Doctor ran an hour late last visit", prefer_wallet=True
    )
    assert (approval.calculated, approval.override_amount, approval.extra) == (
        29_713,
        39_713,
        10_000,
    )
    assert balance(chart.patient_wallet(patient.id)) == 0  # nothing moves yet
    with pytest.raises(PermissionDenied):
        refunds_approvals.approve_override(admin, approval.id)
    refunds_approvals.approve_override(admin2, approval.id, "Agreed")
    db.session.expire_all()
    assert balance(chart.patient_wallet(patient.id)) == 10_000
    assert db.session.get(IndividualBooking, item.id).refunded_amount == 39_713
    # The kept part shrank: the GST still payable on it shrank pro rata.
    cancellation = refunds_lookup.cancellation_for(item.id)
    kept = PAID - 39_713
    assert cancellation.gst_reversed == 450 - refunds_money.gst_kept(450, PAID, kept)


@pytest.mark.parametrize(
    "amount, reason, message",
    [
        (0, "A long enough reason", refunds_common.MSG_FURTHER_AMOUNT),
        (
            PAID - 29_713 + 1,
            "A long enough reason",
            refunds_common.MSG_FURTHER_TOO_MUCH % {"left": "₹232.37"},
        ),
        (100, "short", MSG_OVERRIDE_NOTE),
    ],
)
def test_further_refund_refusals(world, users, gateway, clock, amount, reason, message):
    _, item = _cancelled_at_30_hours(world, users, gateway, clock)
    with pytest.raises(CancellationError) as err:
        refunds_approvals.request_further_refund(users(world.admin), item.id, amount, reason)
    assert err.value.message == message
    assert not refunds_approvals.pending_approvals()


def test_further_refund_only_for_a_cancelled_booking_and_one_at_a_time(
    world, users, gateway, clock
):
    patient = users(world.patients[0])
    visit = book_and_pay(
        world,
        patient,
        gateway,
        [(world.consult, [world.doctors[0]], START), (world.lab, [world.lab_provider], at(4, 11))],
    )
    clock.move_to(START - hours(30))
    quoted_cancel(patient, visit.id, [visit.items[0].id])
    admin = users(world.admin)
    with pytest.raises(CancellationError) as err:
        refunds_approvals.request_further_refund(
            admin, visit.items[1].id, 100, "A long enough reason"
        )
    assert err.value.message == refunds_common.MSG_FURTHER_NOT_CANCELLED
    refunds_approvals.request_further_refund(admin, visit.items[0].id, 100, "A long enough reason")
    with pytest.raises(CancellationError) as err:
        refunds_approvals.request_further_refund(
            admin, visit.items[0].id, 100, "A long enough reason"
        )
    assert err.value.message == refunds_common.MSG_FURTHER_PENDING
    with pytest.raises(PermissionDenied):
        refunds_approvals.request_further_refund(
            patient, visit.items[0].id, 100, "A long enough reason"
        )


def test_a_failed_fee_refund_is_retried_and_sent_to_the_wallet_as_a_fee_refund(
    world, users, gateway, clock
):
    """Retries and the admin's "send to wallet" keep the refund a reschedule fee refund,
    so it never counts against the booking's own paid amount."""
    patient, item, resched = _moved(world, users, gateway, clock, "gateway")
    gateway.sandbox.set_faults(refund_outcome="failed")
    try:
        quoted_admin_cancel(
            users(world.admin), item.id, "Clinic closed for a fumigation", mode="clinic"
        )
        for _ in range(refunds_common.max_attempts()):
            settle_refunds(gateway)
    finally:
        gateway.sandbox.set_faults(refund_outcome=None)
    chain = db.session.scalars(
        sa.select(Refund).where(Refund.amount == FEE_10).order_by(Refund.id)
    ).all()
    assert len(chain) == refunds_common.max_attempts()
    assert all(r.reschedule_id == resched.id for r in chain)
    failed = chain[-1]
    assert (failed.status, failed.superseded) == ("FAILED", False)
    wallet = refunds_failed.refund_to_wallet(users(world.admin), failed.id, "Bank keeps refusing")
    assert (wallet.reschedule_id, wallet.destination, wallet.amount) == (
        resched.id,
        "WALLET",
        FEE_10,
    )
    # The booking's own refunds: only the (failed, retried) refund of its paid amount.
    assert [r.amount for r in refunds_money.open_refunds(item.id)] == [PAID]
    assert balance(chart.patient_wallet(patient.id)) == FEE_10
