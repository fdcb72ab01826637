"""A chain of moves (wallet, online, desk) with the policy changed between, then the
provider cancels or completes: every fee given back or earned once, GST netting to zero
(review B's regression tests)."""

import pytest
import sqlalchemy as sa

from portal.booking import reschedule_payment
from portal.booking.models import IndividualBooking, Reschedule
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.policies import service as svc
from portal.policies import store
from portal.refunds.models import Refund
from portal.reports import gst as gst_report
from tests.booking.factories import at, credit_wallet
from tests.refunds.helpers import (
    book_and_pay,
    hours,
    quoted_move,
    quoted_provider_cancel,
    settle_refunds,
)

START = at(4, 10)


@pytest.fixture
def admins(ctx):
    from portal.accounts.models import ADMIN, User

    people = [
        User(email=f"rb-admin{n}@example.com", name=f"Admin {n}", role=ADMIN, phone=None)
        for n in (1, 2)
    ]
    db.session.add_all(people)
    db.session.commit()
    return people


def change_policy(admins, changes):
    v = svc.propose(admins[0], changes, reason="Rates revised by the finance team")
    svc.approve(admins[1], v.id)
    store.forget()
    return v


def _half(x, rate_bps):
    return (x * rate_bps + 5000) // 10000


def _fee(F, bps, platform=500, gst=1800):
    half = _half
    p = half(F, bps)
    pf = half(p, platform)
    g = half(p + pf, gst)
    return p, pf, g, p + pf + g


def test_three_moves_wallet_gateway_desk_then_provider_cancels(
    world, users, gateway, clock, admins
):
    patient = users(world.patients[0])
    admin = users(world.admin)
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], START)]
    ).items[0]
    paid = item.paid_amount
    # policy changed after the booking: GST 12%, platform 10%, tiers 15/25
    change_policy(
        admins, {"gst_bps": 1200, "platform_fee_bps": 1000, "reschedule_tiers.1.penalty_bps": 1500}
    )
    # move 1: 60 h ahead (10 % tier), wallet, to day 4 14:00
    clock.move_to(START - hours(60))
    credit_wallet(patient.id, 100_000)
    r1 = quoted_move(patient, item.id, at(4, 14), pay_with="wallet").reschedule
    assert r1.total == _fee(50_000, 1000)[3]
    # move 2: 40 h before 14:00 (20 %), online
    clock.move_to(at(4, 14) - hours(40))
    res = quoted_move(
        patient, item.id, at(4, 15), pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    )
    reschedule_payment.complete_callback(gateway.pay(res.reschedule.razorpay_order_id))
    gateway.deliver()
    # move 3: admin at the desk, 30 h before 15:00 (20 %)
    clock.move_to(at(4, 15) - hours(30))
    quoted_move(admin, item.id, at(4, 16), pay_with="desk", receipt_no="DESK-77")
    db.session.expire_all()
    rows = db.session.scalars(sa.select(Reschedule).order_by(Reschedule.id)).all()
    assert [r.status for r in rows] == ["DONE"] * 3
    assert [r.total for r in rows] == [
        _fee(50_000, 1000)[3],
        _fee(50_000, 2000)[3],
        _fee(50_000, 2000)[3],
    ]
    fees = sum(r.total for r in rows)
    shares = sum(r.penalty - (r.penalty * 500 + 5000) // 10000 for r in rows)
    assert balance(chart.provider_payable(world.doctors[0])) == shares
    # the provider cancels: everything back
    doctor = users(db.session.get(IndividualBooking, item.id).providers[0].user_id)
    wallet_before = balance(chart.patient_wallet(patient.id))
    quoted_provider_cancel(doctor, item.id, "Called to surgery")
    settle_refunds(gateway)
    db.session.expire_all()
    refunds = db.session.scalars(sa.select(Refund).order_by(Refund.id)).all()
    assert sum(r.amount for r in refunds) == paid + fees
    assert balance(chart.provider_payable(world.doctors[0])) == -25_000
    # wallet got: fee1 (wallet) + fee3 (desk)
    assert (
        balance(chart.patient_wallet(patient.id)) - wallet_before == rows[0].total + rows[2].total
    )
    # GST report of June: net GST 0 for the fee documents and the item together
    rep = gst_report.report(gst_report.parse({"month": "2026-06"}))
    assert rep.net == 0, (rep.collected, rep.reversed)
    assert balance(chart.GST_PAYABLE) == 0


def test_two_moves_then_completed_earning_once(world, users, gateway, clock, admins):
    from portal.payouts import completion

    patient = users(world.patients[0])
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], START)]
    ).items[0]
    credit_wallet(patient.id, 100_000)
    clock.move_to(START - hours(60))
    r1 = quoted_move(patient, item.id, at(4, 14), pay_with="wallet").reschedule
    change_policy(admins, {"commission_bps": 1000})
    clock.move_to(at(4, 14) - hours(30))
    r2 = quoted_move(patient, item.id, at(4, 15), pay_with="wallet").reschedule
    doctor = users(db.session.get(IndividualBooking, item.id).providers[0].user_id)
    clock.move_to(at(4, 15) - hours(0, 30))
    completion.start_booking(doctor, item.id)
    clock.move_to(at(4, 15, 20))
    completion.complete_booking(doctor, item.id)
    db.session.expire_all()

    def c(x):
        return _half(x, 500)

    expected = (50_000 - c(50_000)) + (r1.penalty - c(r1.penalty)) + (r2.penalty - c(r2.penalty))
    assert balance(chart.provider_payable(world.doctors[0])) == expected
