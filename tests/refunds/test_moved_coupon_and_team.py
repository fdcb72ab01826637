"""A coupon's item moved twice then cancelled (by the patient or the provider); a team
with two commission rates moved then cancelled by the clinic (review B's regression
tests)."""

import pytest
import sqlalchemy as sa

from portal.booking import coupons
from portal.catalog.models import Provider
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.refunds.models import Refund
from portal.reports import gst as gst_report
from tests.booking.factories import at, credit_wallet
from tests.refunds.helpers import (
    book_and_pay,
    hours,
    quoted_admin_cancel,
    quoted_cancel,
    quoted_move,
    quoted_provider_cancel,
    settle_refunds,
)

START = at(4, 10)


@pytest.mark.parametrize("who", ["patient", "provider"])
def test_coupon_peel_moved_twice_then_cancelled(world, users, gateway, clock, who):
    patient, admin = users(world.patients[0]), users(world.admin)
    coupons.create_coupon(admin, code="SAVE10", kind="PERCENT", value=1_000)
    credit_wallet(patient.id, 50_000)
    visit = book_and_pay(
        world, patient, gateway, [(world.peel, [world.derm], START)], coupon="SAVE10", wallet=50_000
    )
    item = visit.items[0]
    paid = item.paid_amount
    credit_wallet(patient.id, 200_000)
    clock.move_to(START - hours(60))
    r1 = quoted_move(patient, item.id, at(4, 14), pay_with="wallet").reschedule
    clock.move_to(at(4, 14) - hours(47))
    r2 = quoted_move(patient, item.id, at(4, 15), pay_with="wallet").reschedule
    assert r1.penalty == 12_000 and r2.penalty == 24_000
    clock.move_to(at(4, 15) - hours(30))
    if who == "patient":
        [c] = quoted_cancel(patient, visit.id, [item.id])
        expected = (paid * 7500 + 5000) // 10000 - 10_000
        assert c.refund == expected
        fees_back = 0
    else:
        c = quoted_provider_cancel(
            users(db.session.get(Provider, world.derm).user_id),
            item.id,
            "Called away to the hospital",
        )
        settle_refunds(gateway)
        expected = paid
        fees_back = r1.total + r2.total
    db.session.expire_all()
    refunds = db.session.scalars(sa.select(Refund)).all()
    assert sum(r.amount for r in refunds) == expected + fees_back
    rep = gst_report.report(gst_report.parse({"month": "2026-06"}))
    assert rep.net == balance(chart.GST_PAYABLE)


def test_team_with_two_commission_rates_moved_then_clinic_cancels(world, users, gateway, clock):
    d0, d1 = (db.session.get(Provider, i) for i in world.doctors)
    d1.commission_bps = 1_250
    db.session.commit()
    patient = users(world.patients[0])
    item = book_and_pay(world, patient, gateway, [(world.consult, world.doctors, START)]).items[0]
    credit_wallet(patient.id, 100_000)
    clock.move_to(START - hours(60))
    r = quoted_move(patient, item.id, at(4, 14), pay_with="wallet").reschedule
    assert r.penalty_bps == 1_500 and r.penalty == 7_500

    def half(x, rate_bps):
        return (x * rate_bps + 5000) // 10000

    s0, s1 = 3_750, 3_750
    assert balance(chart.provider_payable(d0.id)) == s0 - half(s0, 500)
    assert balance(chart.provider_payable(d1.id)) == s1 - half(s1, 1_250)
    assert r.commission == half(s0, 500) + half(s1, 1_250)
    quoted_admin_cancel(
        users(world.admin), item.id, "Clinic closed for a fumigation", mode="clinic"
    )
    settle_refunds(gateway)
    assert balance(chart.provider_payable(d0.id)) == 0
    assert balance(chart.provider_payable(d1.id)) == 0
    assert balance(chart.patient_wallet(patient.id)) == 100_000
