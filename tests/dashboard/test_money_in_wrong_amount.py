"""A capture of the wrong amount is money in (gateway clearing debited, the patient's
wallet credited) though it paid for nothing: the transactions console's and the
dashboard's "money in" count it, as the ledger does (review finding). It has a row of
its own (``unapplied``); a row written before pmu0a1d0001 may still be the order's own,
unpaid with ``captured_amount`` set, and counts by its timeline entry."""

from datetime import timedelta

import sqlalchemy as sa

from portal.booking import links
from portal.dashboard.queries import dashboard
from portal.db import utcnow
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerAccount, LedgerEntry
from portal.payments.models import Payment
from portal.transactions.filters import MovementFilter
from portal.transactions.queries import summary
from tests.booking.conftest import _ledger_stays_sound, clock, gateway, users, world  # noqa: F401
from tests.booking.factories import at, captured_event, post_webhook, quoted_checkout
from tests.payments.test_payments_checkout import CALLBACK, hold
from tests.payments.test_payments_links import admin_hold


def _clearing_debits():
    return sum(
        a
        for a in db.session.scalars(
            sa.select(LedgerEntry.amount)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerAccount.code == chart.GATEWAY_CLEARING)
        )
        if a > 0
    )


def test_wrong_amount_capture_counts_as_money_in(app, world, users, gateway):
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    payment_id = gateway.pay(result.payment.razorpay_order_id)["razorpay_payment_id"]
    post_webhook(app, captured_event(gateway, payment_id, 100), "evt_wrong_1")
    db.session.expire_all()
    captured = _clearing_debits()
    assert captured == 100  # the ledger: ₹1 came in through Razorpay
    p = db.session.scalar(sa.select(Payment).where(Payment.razorpay_payment_id == payment_id))
    today = utcnow().astimezone(CLINIC_TZ).date()
    console = summary(MovementFilter(start=today, end=today))
    board = dashboard().series["money in"].window(1)[1]
    # A row of its own (the order's row stays payable), its money in the wallet.
    assert (p.status, p.captured_amount, p.unapplied) == ("SUCCESSFUL", 100, True)
    assert p.late_for_id == result.payment.id
    assert (console.money_in, board) == (captured, captured)


def test_the_console_and_the_dashboard_count_it_on_the_day_it_came_in(
    app, world, users, gateway, clock
):
    """A link made on Monday and paid the wrong amount on Tuesday 01:00 IST is Tuesday's
    money on both (its row has no paid_at; re-review finding)."""
    admin, visit_id = admin_hold(world, users, at(2, 10))
    payment = links.create_payment_link(admin, visit_id)
    clock.shift(timedelta(hours=17))  # Tuesday 01:00 IST, the link still payable
    gateway.pay_link(payment.link_url)
    gateway.sandbox.webhooks.pending = []
    [payment_id] = gateway.sandbox.store.payments
    post_webhook(app, captured_event(gateway, payment_id, 100), "evt_wrong_link")
    db.session.expire_all()
    assert _clearing_debits() == 100
    today = utcnow().astimezone(CLINIC_TZ).date()
    console = summary(MovementFilter(start=today, end=today))
    board = dashboard().series["money in"].window(1)[1]
    assert board == 100
    assert console.money_in == 100
