"""Review: a reschedule fee paid after its request EXPIRED and after the patient closed
the account. ``_refund_closed`` -> ``_record_capture`` recorded the payment on the
reschedule row itself (EXPIRED, same amount), but posted it as ``closed_account_capture``
(key ``closed_account_capture:<pay id>``), not ``reschedule_unapplied``: every reader that
dates such a row (``FEE_CREDITED_AT``: dashboard money in, reconciliation's window and
time, the console's ``_fee_paid_at``) looks for the ``reschedule_unapplied`` key, so the
fee was no money in and reconciliation found its time differing. Now such a payment is
always a ``FeeCapture`` of its own, dated by its capture."""

from datetime import timedelta

import sqlalchemy as sa

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.booking import reschedule_payment
from portal.booking.models import FeeCapture, Reschedule
from portal.dashboard.queries import dashboard
from portal.db import unit_of_work, utcnow
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from portal.reconcile import ours
from portal.refunds.models import Refund
from portal.transactions import detail
from portal.transactions.filters import MovementFilter, utc_bounds
from portal.transactions.models import FEE_CAPTURE, MoneyMovement
from portal.transactions.queries import summary
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay, hours, quoted_move


def _clearing_debits_today():
    today = utcnow().astimezone(CLINIC_TZ).date()
    low, high = utc_bounds(today, today)
    return sum(
        a
        for a in db.session.scalars(
            sa.select(LedgerEntry.amount)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
            .where(
                LedgerAccount.code == chart.GATEWAY_CLEARING,
                LedgerTransaction.created_at >= low,
                LedgerTransaction.created_at < high,
            )
        )
        if a > 0
    )


def _money_in_today():
    today = utcnow().astimezone(CLINIC_TZ).date()
    console = summary(MovementFilter(start=today, end=today)).money_in
    board = dashboard().series["money in"].window(1)[1]
    return console, board


def test_a_fee_paid_after_expiry_and_closure_is_money_in_and_dated_by_its_capture(
    world, users, gateway, clock
):
    patient = users(world.patients[0])
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))]
    ).items[0]
    clock.move_to(at(4, 10) - hours(60))
    resched = quoted_move(
        patient, item.id, at(7, 11), pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    ).reschedule
    order_id, rid = resched.razorpay_order_id, resched.id
    clock.move_to(resched.expires_at + timedelta(hours=3))
    assert reschedule_payment.expire_reschedules() == 1
    with unit_of_work():
        accounts.close_own_account(db.session.get(User, patient.id))
    before = _money_in_today()
    cleared_before = _clearing_debits_today()
    paid = gateway.pay(order_id)  # the tab left open
    gateway.deliver()
    db.session.expire_all()
    row = db.session.get(Reschedule, rid)
    [capture] = db.session.scalars(sa.select(FeeCapture).where(FeeCapture.reschedule_id == rid))
    assert (row.status, row.razorpay_payment_id) == ("EXPIRED", None)
    assert (capture.razorpay_payment_id, capture.amount) == (paid["razorpay_payment_id"], row.total)
    # the console's story of it: refunded, never the (closed) wallet
    movement = db.session.scalar(
        sa.select(MoneyMovement).where(
            MoneyMovement.source == FEE_CAPTURE, MoneyMovement.source_id == capture.id
        )
    )
    told = [e.what for e in detail.timeline(movement)]
    assert "reschedule fee captured, account closed: refunded to its source" in told, told
    [refund] = db.session.scalars(sa.select(Refund).where(Refund.reschedule_id == rid)).all()
    assert refund.amount == row.total
    came_in = _clearing_debits_today() - cleared_before
    assert came_in == row.total  # the ledger: the fee came in today
    after = _money_in_today()
    # reconciliation dates our side of the payment (the gateway's is the capture, now)
    side = ours.by_reference("payment", [paid["razorpay_payment_id"]])[paid["razorpay_payment_id"]]
    capture_at = int(utcnow().timestamp())
    assert (after[0] - before[0], after[1] - before[1], abs(side.at - capture_at) < 600) == (
        came_in,
        came_in,
        True,
    ), (before, after, side.at, capture_at)


def test_reconciliation_matches_that_fee(world, users, gateway, clock):
    """The same, through a reconciliation run of the capture's day: no discrepancy."""
    from tests.reconcile.helpers import cases, later, run_day

    patient = users(world.patients[0])
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))]
    ).items[0]
    clock.move_to(at(4, 10) - hours(60))
    resched = quoted_move(
        patient, item.id, at(7, 11), pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    ).reschedule
    order_id = resched.razorpay_order_id
    clock.move_to(resched.expires_at + timedelta(hours=3))
    assert reschedule_payment.expire_reschedules() == 1
    with unit_of_work():
        accounts.close_own_account(db.session.get(User, patient.id))
    paid = gateway.pay(order_id)
    gateway.deliver()
    gateway.sandbox.advance(24 * 3600)
    gateway.deliver()
    day = utcnow().astimezone(CLINIC_TZ).date()
    later(clock)
    run_day(world, day)
    found = [
        (c.kind, c.status, c.reason)
        for c in cases(reference=paid["razorpay_payment_id"])
        if c.kind == "payment"
    ]
    assert found == [("payment", "matched", None)], found
