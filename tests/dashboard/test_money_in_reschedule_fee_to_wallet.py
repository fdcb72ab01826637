"""A reschedule fee payment Razorpay captured that its reschedule does not record — the
wrong amount (the request still waiting for its payment), or a second payment on a fee
already paid — is money in: the ledger debits ``gateway_clearing`` and credits the
patient's wallet (``reschedule_unapplied``), and a ``FeeCapture`` row records the payment,
as a visit's capture that confirmed nothing has its own payment row
(tests/dashboard/test_money_in_wrong_amount.py). The transactions console's and the
dashboard's "money in" count it, the console's rebuild keeps its row, and a repeated
event records nothing twice.

Review finding: no row recorded such a payment (the reschedule keeps one
``razorpay_payment_id``, and the ledger row is a wallet credit outside every bucket), so
both "money in" figures left it out."""

from datetime import timedelta

import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.booking import reschedule_payment
from portal.booking.models import FeeCapture, Reschedule
from portal.dashboard.queries import dashboard
from portal.db import utcnow
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from portal.ledger.service import balance
from portal.reconcile import ours
from portal.transactions import models as mm
from portal.transactions import projection
from portal.transactions.filters import MovementFilter, utc_bounds
from portal.transactions.models import MoneyMovement
from portal.transactions.queries import summary
from tests.booking.conftest import _ledger_stays_sound, clock, gateway, users, world  # noqa: F401
from tests.booking.factories import at, captured_event, post_webhook
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


def _asked(world, users, gateway, clock):
    """A paid consultation and a move of it asked for, its fee to pay through Razorpay."""
    patient = users(world.patients[0])
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))]
    ).items[0]
    clock.move_to(at(4, 10) - hours(60))  # Tuesday 22:00 IST: the 10 % tier, a fee to pay
    resched = quoted_move(
        patient, item.id, at(7, 11), pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    ).reschedule
    return patient, resched


def _fee_rows():
    return db.session.scalars(
        sa.select(MoneyMovement)
        .where(MoneyMovement.type == mm.RESCHEDULE_FEE)
        .order_by(MoneyMovement.id)
    ).all()


def test_a_reschedule_fee_captured_for_the_wrong_amount_is_money_in(
    app, world, users, gateway, clock
):
    patient, resched = _asked(world, users, gateway, clock)
    paid = gateway.pay(resched.razorpay_order_id)
    gateway.sandbox.webhooks.pending = []
    # Razorpay captured ₹1 on the fee's order (its own record says so).
    event = captured_event(gateway, paid["razorpay_payment_id"], 100)
    post_webhook(app, event, "evt_fee_wrong")
    db.session.expire_all()

    row = db.session.get(Reschedule, resched.id)
    assert row.status == "PENDING_PAYMENT"  # still waiting for the right amount
    assert row.razorpay_payment_id is None
    came_in = _clearing_debits_today()
    assert came_in == 100  # the ledger: ₹1 came in through Razorpay today (to the wallet)
    assert balance(chart.patient_wallet(patient.id)) == 100
    assert _money_in_today() == (came_in, came_in)

    [capture] = db.session.scalars(sa.select(FeeCapture)).all()
    assert (capture.reschedule_id, capture.razorpay_payment_id, capture.amount) == (
        resched.id,
        paid["razorpay_payment_id"],
        100,
    )
    # Its console row: money in, its own payment id, no price breakup (it paid for nothing).
    [fee_row] = [m for m in _fee_rows() if m.source == "fee_capture"]
    assert (fee_row.bucket, fee_row.amount, fee_row.status) == ("in", 100, "SUCCESSFUL")
    assert fee_row.reference == paid["razorpay_payment_id"]
    assert (fee_row.fee, fee_row.platform_fee, fee_row.gst) == (None, None, None)
    assert fee_row.visit_id == row.visit_id

    # The same event again (Razorpay retries): nothing recorded, posted or told twice.
    post_webhook(app, event, "evt_fee_wrong_again")
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FeeCapture)) == 1
    told = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.action == "booking.reschedule_payment_unapplied")
    )
    assert told == 1
    assert _money_in_today() == (100, 100)


def test_a_second_payment_of_a_fee_already_paid_is_money_in(app, world, users, gateway, clock):
    _, resched = _asked(world, users, gateway, clock)
    gateway.pay(resched.razorpay_order_id)
    gateway.deliver()
    db.session.expire_all()
    assert db.session.get(Reschedule, resched.id).status == "DONE"
    # Razorpay lets a second payment through on the same order.
    store = gateway.sandbox.store
    store.orders[resched.razorpay_order_id]["status"] = "attempted"
    second = store.pay_order(resched.razorpay_order_id)["id"]
    gateway.deliver()
    db.session.expire_all()

    assert db.session.get(Reschedule, resched.id).razorpay_payment_id != second
    [capture] = db.session.scalars(sa.select(FeeCapture)).all()
    assert (capture.razorpay_payment_id, capture.amount) == (second, resched.total)
    came_in = _clearing_debits_today()
    assert came_in == 2 * resched.total  # the fee, and the second payment to the wallet
    assert _money_in_today() == (came_in, came_in)


def test_the_console_rebuild_keeps_a_fee_captures_row(app, world, users, gateway, clock):
    _, resched = _asked(world, users, gateway, clock)
    paid = gateway.pay(resched.razorpay_order_id)
    gateway.sandbox.webhooks.pending = []
    post_webhook(app, captured_event(gateway, paid["razorpay_payment_id"], 100), "evt_fee")
    db.session.expire_all()
    before = [(m.source, m.bucket, m.amount, m.reference) for m in _fee_rows()]
    assert ("fee_capture", "in", 100, paid["razorpay_payment_id"]) in before
    db.session.execute(sa.delete(MoneyMovement))
    db.session.commit()
    assert projection.rebuild() >= 1
    db.session.expire_all()
    assert [(m.source, m.bucket, m.amount, m.reference) for m in _fee_rows()] == before
    assert _money_in_today()[0] == 100


def test_its_console_page_shows_the_payment_and_its_wallet_credit(
    app, world, users, gateway, clock, client, login, make_user
):
    _, resched = _asked(world, users, gateway, clock)
    paid = gateway.pay(resched.razorpay_order_id)
    gateway.sandbox.webhooks.pending = []
    post_webhook(app, captured_event(gateway, paid["razorpay_payment_id"], 100), "evt_fee")
    db.session.expire_all()
    [row] = [m for m in _fee_rows() if m.source == "fee_capture"]
    login(make_user("admin", email="finance@example.com"))
    page = client.get(f"/admin/transactions/{row.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "reschedule fee captured, put in the wallet" in html
    assert "ledger: reschedule_unapplied" in html
    assert paid["razorpay_payment_id"] in html


def test_a_wrong_fee_amount_after_the_request_expired_is_counted_as_captured(
    app, world, users, gateway, clock
):
    patient, resched = _asked(world, users, gateway, clock)
    order_id = resched.razorpay_order_id
    # The request runs out unpaid.
    clock.move_to(resched.expires_at + timedelta(minutes=1))
    assert reschedule_payment.expire_reschedules() == 1
    db.session.expire_all()
    assert db.session.get(Reschedule, resched.id).status == "EXPIRED"
    # Then Razorpay captures ₹1 on the fee's order.
    paid = gateway.pay(order_id)
    gateway.sandbox.webhooks.pending = []
    post_webhook(app, captured_event(gateway, paid["razorpay_payment_id"], 100), "evt_fee_late")
    db.session.expire_all()

    assert balance(chart.patient_wallet(patient.id)) == 100  # the ledger: ₹1 in the wallet
    came_in = _clearing_debits_today()
    assert came_in == 100
    # Money in (console, dashboard) and reconciliation's side of that payment are what
    # Razorpay captured, not the fee's total.
    side = ours.by_reference("payment", [paid["razorpay_payment_id"]])[paid["razorpay_payment_id"]]
    assert (*_money_in_today(), side.amount) == (came_in, came_in, came_in)


def test_the_patient_told_of_a_wrong_fee_amount_is_not_told_the_request_ended(
    app, world, users, gateway, clock
):
    """Review finding: the notice of a fee that moved nothing said it 'arrived after that
    request had ended' also for the wrong amount on a request still waiting for its fee."""
    from portal.domain.rates import format_inr
    from portal.notify import tasks
    from portal.notify.models import Notification

    patient, resched = _asked(world, users, gateway, clock)
    paid = gateway.pay(resched.razorpay_order_id)
    gateway.sandbox.webhooks.pending = []
    post_webhook(app, captured_event(gateway, paid["razorpay_payment_id"], 100), "evt_w")
    db.session.expire_all()
    resched = db.session.get(Reschedule, resched.id)
    assert resched.status == "PENDING_PAYMENT"
    tasks.reschedule_fee_unapplied(resched.id, paid["razorpay_payment_id"], 100)
    db.session.commit()
    (body,) = db.session.scalars(
        sa.select(Notification.body).where(Notification.kind == "booking.reschedule_fee_unapplied")
    ).all()
    assert body.startswith(
        f"{format_inr(100)} was not the fee asked ({format_inr(resched.total)})"
    ), body
