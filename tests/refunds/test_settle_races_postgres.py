"""Two administrators settling failed refunds against one dashboard refund at once, on
PostgreSQL (``refunds.outside``): the visit's lock makes the second wait for the first and
count what it took, so a dashboard refund is never counted twice, and one refund is never
settled twice."""

import pytest
import time_machine

from portal.accounts.models import User
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.check import verify_ledger
from portal.ledger.service import balance
from portal.refunds import lookup as refunds_lookup
from portal.refunds import outside
from portal.refunds.common import CancellationError
from portal.refunds.models import Refund
from tests.booking.factories import NOW, build_world, start_gateway
from tests.refunds.helpers import book_and_pay, consult_and_lab, quoted_cancel
from tests.refunds.test_admin_races_postgres import _admins, _together

pytestmark = pytest.mark.postgres

NOTE = "Finance refunded ₹600 on the dashboard for this visit"


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def pg_gateway(pg_app):
    gw = start_gateway(pg_app)
    yield gw
    gw.close()


def _both_refused_at_razorpay(pg_app, pg_gateway):
    """₹600 refunded on the dashboard of ₹882.50, then both items cancelled: Razorpay has
    room for ₹282.50 and refuses both refunds (₹529.50 and ₹353). Returns the admins' ids,
    the patient's, and the failed refunds' (lab's, consultation's)."""
    with pg_app.app_context():
        world = build_world()
        admins = _admins(2)
        patient = db.session.get(User, world.patients[0])
        visit = book_and_pay(world, patient, pg_gateway, consult_and_lab(world))
        [payment] = [p for p in visit.payments if p.razorpay_payment_id]
        pg_gateway.sandbox.refund_at_gateway(payment.razorpay_payment_id, 60_000)
        pg_gateway.sandbox.advance(10)
        pg_gateway.deliver()
        quoted_cancel(patient, visit.id, [i.id for i in visit.items])
        db.session.expire_all()
        failed = sorted(
            (r for r in refunds_lookup.refunds_for_visit(visit.id) if r.status == "FAILED"),
            key=lambda r: r.amount,
        )
        assert [r.amount for r in failed] == [35_300, 52_950]
        ids = admins, patient.id, [r.id for r in failed]
        db.session.remove()
    return ids


def _settle(admin_id, refund_id, shown):
    return outside.settle_refund(
        db.session.get(User, admin_id), refund_id, shown_to_wallet=shown, note=NOTE
    )


def test_two_refunds_settled_at_once_count_the_dashboard_refund_once(pg_app, pg_gateway, clock):
    (a1, a2), patient_id, (lab, consult) = _both_refused_at_razorpay(pg_app, pg_gateway)
    # Each page, read before either settled, showed nothing to the wallet (the ₹600 covers
    # either refund alone): the second to settle finds ₹600 partly taken and is refused.
    results = _together(pg_app, lambda: _settle(a1, lab, 0), lambda: _settle(a2, consult, 0))
    settled = [r for r in results if isinstance(r, outside.Settled)]
    refused = [r for r in results if isinstance(r, CancellationError)]
    assert len(settled) == 1 and len(refused) == 1, results
    assert "changed since the page was shown" in refused[0].message
    with pg_app.app_context():
        covered = sum(
            r.amount for r in db.session.query(Refund).filter(Refund.outside_refund_id.is_not(None))
        )
        left = balance(chart.REFUNDS_PAYABLE)
        problems = verify_ledger()
        db.session.remove()
    assert problems == []
    assert covered in (35_300, 52_950) and covered + left == 88_250, (covered, left)
    # Confirmed again at what it says now, the other is settled with the rest.
    with pg_app.app_context():
        loser = consult if covered == 35_300 else lab
        shown = outside.preview(db.session.get(User, a1), loser).to_wallet
        _settle(a1, loser, shown)
        covered = sum(
            r.amount for r in db.session.query(Refund).filter(Refund.outside_refund_id.is_not(None))
        )
        assert covered == 60_000 and balance(chart.REFUNDS_PAYABLE) == 0
        assert balance(chart.patient_wallet(patient_id)) == 28_250
        assert verify_ledger() == []
        db.session.remove()


def test_one_refund_settled_by_two_admins_at_once_is_settled_once(pg_app, pg_gateway, clock):
    (a1, a2), patient_id, (lab, _consult) = _both_refused_at_razorpay(pg_app, pg_gateway)
    results = _together(pg_app, lambda: _settle(a1, lab, 0), lambda: _settle(a2, lab, 0))
    settled = [r for r in results if isinstance(r, outside.Settled)]
    refused = [r for r in results if isinstance(r, CancellationError)]
    assert len(settled) == 1 and len(refused) == 1, results
    assert "settled already" in refused[0].message
    with pg_app.app_context():
        parts = db.session.query(Refund).filter(Refund.retry_of_id == lab).all()
        assert [(r.amount, r.destination) for r in parts] == [(35_300, "GATEWAY")]
        assert balance(chart.REFUNDS_PAYABLE) == 52_950
        assert verify_ledger() == []
        db.session.remove()
