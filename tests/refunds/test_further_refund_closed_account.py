"""A further refund for a patient who has closed their account: a credit to a closed
account's wallet is refused, made or approved later (docs/privacy.md), as "send to
wallet" is for a failed refund (``MSG_CLOSED_ACCOUNT``). Review finding: an approved
further refund was paid into the closed account's wallet (asked for the wallet, or
"as chosen at cancellation" when that was the wallet, or a gateway part under ₹1 that
goes to the wallet). A refund to the original payment method stays allowed."""

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.accounts.passwords import hash_password
from portal.booking import prices
from portal.extensions import db
from portal.privacy import closure
from portal.refunds import approvals as ra
from portal.refunds.common import MSG_CLOSED_ACCOUNT, CancellationError
from portal.refunds.models import GATEWAY, Refund, RefundApproval
from portal.wallet import adjustments, cash
from portal.wallet.models import AdjustmentStatus
from tests.booking.factories import at
from tests.plugin import PASSWORD
from tests.refunds.helpers import (
    book_and_pay,
    hours,
    login,
    quoted_admin_cancel,
    settle_refunds,
    with_known_passwords,
)

REASON = "Goodwill for the trouble"


def _cancelled(world, users, gateway, clock, *, to_wallet=False):
    """A consult paid online, cancelled by an admin for the patient 30 hours ahead (a part
    is kept, so more can be refunded), its refund settled. Returns (patient id, item id)."""
    patient = users(world.patients[0])
    patient.password_hash = hash_password(PASSWORD)
    db.session.commit()
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
    item_id = visit.items[0].id
    clock.move_to(at(4, 10) - hours(30))
    admin = users(world.admin)
    quoted_admin_cancel(admin, item_id, "Doctor unavailable that day", prefer_wallet=to_wallet)
    settle_refunds(gateway, 24 * 3600)
    db.session.expire_all()
    return patient.id, item_id


def _pay_wallet_out(world, users, checker_id, patient_id):
    """The clinic hands the wallet's balance over in cash (a second admin approving it
    above the limit), as it must before the account can close."""
    balance = prices.wallet_balance(patient_id)
    done = cash.pay_out(users(world.admin), patient_id, balance, "Paid out before closure", "D-1")
    if done.status == AdjustmentStatus.PENDING_APPROVAL:
        adjustments.approve_adjustment(db.session.get(User, checker_id), done.id, "ok")
    db.session.expire_all()
    assert prices.wallet_balance(patient_id) == 0


def _close(patient_id):
    closure.close_account(patient_id, PASSWORD, True)
    db.session.expire_all()
    assert db.session.get(User, patient_id).is_closed


def _nothing_waits():
    return db.session.scalars(sa.select(RefundApproval)).all() == []


def test_a_further_refund_to_a_closed_accounts_wallet_is_refused_when_asked(
    world, users, gateway, clock
):
    patient_id, item_id = _cancelled(world, users, gateway, clock)
    _close(patient_id)
    with pytest.raises(CancellationError) as refused:
        ra.request_further_refund(users(world.admin), item_id, 100_00, REASON, prefer_wallet=True)
    assert refused.value.message == MSG_CLOSED_ACCOUNT
    assert refused.value.field == "destination"
    db.session.expire_all()
    assert _nothing_waits() and prices.wallet_balance(patient_id) == 0


def test_as_chosen_at_cancellation_is_the_wallet_and_refused(
    world, users, gateway, clock, make_user
):
    """``prefer_wallet`` None: the cancellation's choice, here the wallet."""
    checker = make_user("admin", email="checker@example.com", name="Ravi Checker")
    patient_id, item_id = _cancelled(world, users, gateway, clock, to_wallet=True)
    _pay_wallet_out(world, users, checker.id, patient_id)
    _close(patient_id)
    with pytest.raises(CancellationError) as refused:
        ra.request_further_refund(users(world.admin), item_id, 100_00, REASON, prefer_wallet=None)
    assert refused.value.message == MSG_CLOSED_ACCOUNT
    db.session.expire_all()
    assert _nothing_waits() and prices.wallet_balance(patient_id) == 0


def test_a_gateway_part_under_one_rupee_would_go_to_the_wallet_and_is_refused(
    world, users, gateway, clock
):
    """Razorpay refunds at least ₹1: 50 paise to the original payment method would be put
    in the wallet (``money._planned``), which a closed account does not have."""
    patient_id, item_id = _cancelled(world, users, gateway, clock)
    _close(patient_id)
    with pytest.raises(CancellationError) as refused:
        ra.request_further_refund(users(world.admin), item_id, 50, REASON, prefer_wallet=False)
    assert refused.value.message == MSG_CLOSED_ACCOUNT
    db.session.expire_all()
    assert _nothing_waits()


def test_a_further_refund_to_the_original_payment_method_stays_allowed(
    world, users, gateway, clock, make_user
):
    checker = make_user("admin", email="checker@example.com", name="Ravi Checker")
    patient_id, item_id = _cancelled(world, users, gateway, clock)
    _close(patient_id)
    approval = ra.request_further_refund(
        users(world.admin), item_id, 100_00, REASON, prefer_wallet=False
    )
    ra.approve_override(db.session.get(User, checker.id), approval.id, "ok")
    db.session.expire_all()
    rows = db.session.scalars(sa.select(Refund).where(Refund.approval_id == approval.id)).all()
    assert [(r.destination, r.amount) for r in rows] == [(GATEWAY, 100_00)]
    assert prices.wallet_balance(patient_id) == 0


def test_a_waiting_further_refund_stops_the_closure_and_is_refused_if_closed_meanwhile(
    world, users, gateway, clock, make_user
):
    """Asked before the closure: the closure is refused while it waits (a refund not
    finished). Should the account be closed all the same (a closure committed beside the
    request), the approval refuses the wallet too and leaves the request waiting."""
    checker = make_user("admin", email="checker@example.com", name="Ravi Checker")
    patient_id, item_id = _cancelled(world, users, gateway, clock)
    approval = ra.request_further_refund(
        users(world.admin), item_id, 100_00, REASON, prefer_wallet=True
    )
    approval_id = approval.id
    with pytest.raises(closure.ClosureRefused) as refused:
        closure.close_account(patient_id, PASSWORD, True)
    assert [r.template for r in refused.value.reasons] == [closure.REFUNDS]
    db.session.expire_all()
    db.session.get(User, patient_id).closed_at = db.session.get(User, patient_id).created_at
    db.session.commit()
    with pytest.raises(CancellationError) as refused:
        ra.approve_override(db.session.get(User, checker.id), approval_id, "ok")
    assert refused.value.message == MSG_CLOSED_ACCOUNT
    db.session.expire_all()
    assert db.session.get(RefundApproval, approval_id).status == "PENDING"
    assert prices.wallet_balance(patient_id) == 0
    assert not db.session.scalars(sa.select(Refund).where(Refund.approval_id == approval_id)).all()


def test_the_admin_form_says_the_wallet_is_refused(app, client, world, users, gateway, clock):
    patient_id, item_id = _cancelled(world, users, gateway, clock)
    _close(patient_id)
    with_known_passwords()
    admin_email = users(world.admin).email
    db.session.remove()
    login(client, admin_email)
    r = client.post(
        f"/admin/bookings/{item_id}/further-refund",
        data={"amount": "100", "destination": "wallet", "reason": REASON},
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    beside = html.split("<legend>Refund to</legend>", 1)[1].split("</fieldset>")[0]
    assert "This patient has closed their account" in beside, beside
    with app.app_context():
        assert _nothing_waits()
