"""A refund made on Razorpay's dashboard, outside the portal (review r1_refunds): Send to
wallet refuses to give back more than the payment took in. On ₹882.50 with ₹100 refunded
on the dashboard, cancelling both items leaves Razorpay room for ₹782.50; the last
refund (₹353) is refused there, FAILED, and sending it to the wallet would give the
patient ₹100 more than they paid."""

import pytest

from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.refunds import failed as refunds_failed
from portal.refunds import lookup as refunds_lookup
from portal.refunds.common import CancellationError
from tests.refunds.conftest import _ledger_stays_sound, clock, gateway, users, world  # noqa: F401
from tests.refunds.helpers import book_and_pay, consult_and_lab, quoted_cancel, settle_refunds


def _paid_with_a_dashboard_refund(world, users, gateway, dashboard):
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, consult_and_lab(world))
    [payment] = [p for p in visit.payments if p.razorpay_payment_id]
    assert payment.captured_amount == 88_250
    gateway.sandbox.refund_at_gateway(payment.razorpay_payment_id, dashboard)
    gateway.sandbox.advance(10)
    gateway.deliver()
    return patient, visit


def _failed(visit):
    db.session.expire_all()
    return [r for r in refunds_lookup.refunds_for_visit(visit.id) if r.status == "FAILED"]


def test_send_to_wallet_refuses_what_a_dashboard_refund_already_gave_back(
    world, users, gateway, clock
):
    patient, visit = _paid_with_a_dashboard_refund(world, users, gateway, 10_000)
    quoted_cancel(patient, visit.id, [i.id for i in visit.items])
    [failed] = _failed(visit)
    assert failed.amount == 35_300 and "greater than amount captured" in failed.failure_reason
    with pytest.raises(CancellationError) as refused:
        refunds_failed.refund_to_wallet(users(world.admin), failed.id, "Razorpay refused it")
    said = str(refused.value)
    assert "₹100 of this payment outside the portal" in said, said
    assert "₹100 more than" in said and "Settle it against the dashboard refund" in said, said
    db.session.expire_all()
    assert (failed.status, failed.superseded) == ("FAILED", False)
    assert balance(chart.patient_wallet(patient.id)) == 0


def test_a_dashboard_refund_that_leaves_room_does_not_stop_the_wallet(world, users, gateway, clock):
    """₹100 on the dashboard, then only the lab (₹353) cancelled and its refund failing:
    ₹100 + ₹353 is within ₹882.50, so the wallet takes it."""
    patient, visit = _paid_with_a_dashboard_refund(world, users, gateway, 10_000)
    gateway.sandbox.set_faults(refund_outcome="failed")
    lab = [i for i in visit.items if i.service_id == world.lab][0]
    quoted_cancel(patient, visit.id, [lab.id])
    for _ in range(3):  # failed at Razorpay, retried as new refunds, then given up
        settle_refunds(gateway)
    [failed] = [r for r in _failed(visit) if not r.superseded]
    wallet = refunds_failed.refund_to_wallet(users(world.admin), failed.id, "Card closed")
    assert wallet.amount == 35_300 == balance(chart.patient_wallet(patient.id))
