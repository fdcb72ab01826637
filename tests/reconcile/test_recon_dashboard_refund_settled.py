"""A failed refund settled against a dashboard refund (``refunds.outside``) and that dashboard
refund's reconciliation case, in either order: the money that left through the dashboard
leaves gateway clearing once (the case's accept), the settlement takes it from suspense,
and once both are done nothing is left unaccounted: suspense empty, clearing equal to what
Razorpay holds, refunds payable empty."""

import pytest

from portal.extensions import db
from portal.gateway import get_payin
from portal.ledger import accounts as chart
from portal.ledger.check import verify_gateway_clearing
from portal.ledger.service import balance
from portal.reconcile import resolve
from portal.refunds import lookup as refunds_lookup
from portal.refunds import outside
from tests.reconcile.helpers import admin, case_for, later, run_day
from tests.refunds.helpers import book_and_pay, consult_and_lab, quoted_cancel

NOTE = "Finance refunded ₹100 on the dashboard for this lab test"


def _failed_after_a_dashboard_refund(world, users, gateway):
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, consult_and_lab(world))
    [payment] = [p for p in visit.payments if p.razorpay_payment_id]
    made = gateway.sandbox.refund_at_gateway(payment.razorpay_payment_id, 10_000)
    gateway.sandbox.advance(10)
    gateway.deliver()
    quoted_cancel(patient, visit.id, [i.id for i in visit.items])
    gateway.sandbox.advance(10)
    gateway.deliver()
    db.session.expire_all()
    [failed] = [
        r
        for r in refunds_lookup.refunds_for_visit(visit.id)
        if r.status == "FAILED" and not r.superseded
    ]
    return patient, failed, made["id"]


def _settle(world, failed):
    outside.settle_refund(admin(world), failed.id, shown_to_wallet=25_300, note=NOTE)


def _accept(world, clock, dashboard_id):
    later(clock)
    run = run_day(world)
    assert run.status == "finished", run.error
    case = case_for(dashboard_id)
    assert (case.kind, case.reason, case.our_id) == ("refund", "missing_ours", None)
    resolve.accept(admin(world), case.id, "Refund made on the dashboard by finance")
    assert case_for(dashboard_id).status == "resolved"


@pytest.mark.parametrize("first", ["settled", "accepted"])
def test_the_dashboard_refund_is_accounted_once_whichever_comes_first(
    world, users, gateway, clock, first
):
    patient, failed, dashboard_id = _failed_after_a_dashboard_refund(world, users, gateway)
    if first == "settled":
        _settle(world, failed)
        # Not yet accepted: clearing still counts the ₹100 Razorpay paid out, and suspense
        # holds the settlement's ₹100 until the case takes it out of clearing.
        assert balance(chart.RECONCILIATION_SUSPENSE) == 10_000
        [finding] = verify_gateway_clearing(get_payin().account_position())
        assert "+10000 paise unexplained" in finding
        _accept(world, clock, dashboard_id)
    else:
        _accept(world, clock, dashboard_id)
        assert balance(chart.RECONCILIATION_SUSPENSE) == -10_000  # a debit: owed by no one yet
        _settle(world, failed)
    db.session.expire_all()
    assert balance(chart.RECONCILIATION_SUSPENSE) == 0
    assert balance(chart.REFUNDS_PAYABLE) == 0
    assert balance(chart.patient_wallet(patient.id)) == 25_300
    assert verify_gateway_clearing(get_payin().account_position()) == []
    # A later run changes nothing: the case stays accepted and posts nothing more.
    run = run_day(world)
    assert run.status == "finished", run.error
    assert case_for(dashboard_id).status == "resolved"
    assert balance(chart.RECONCILIATION_SUSPENSE) == 0
    assert verify_gateway_clearing(get_payin().account_position()) == []
