"""A capture of the wrong amount, then the right one on the same order (the patient pays
again): the visit is confirmed by the second, and the first is not lost. It was written
onto the pending payment row itself, so the right capture overwrote its Razorpay id: the
console's money in and reconciliation lost ₹1, and the row that did pay read as having
paid for nothing (no receipt line; refunds skipped it). Each capture now has a row.

A capture of the wrong amount and nothing after it: the hold runs out and the expiry sweep
ends the visit, its wallet part given back. The sweep saw that capture at Razorpay and took
the visit for paid after all, so it never expired it (review finding)."""

from datetime import timedelta

import sqlalchemy as sa

from portal.booking import desk, links, prices, receipts
from portal.booking.postings import WALLET_RESERVED
from portal.booking.tasks import expire_holds
from portal.db import utcnow
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.gateway import GatewayUnavailable, get_payin
from portal.ledger.service import balance
from portal.payments import records
from portal.payments.models import Payment
from portal.refunds import queries as refund_queries
from portal.refunds.models import Refund
from portal.transactions.filters import MovementFilter
from portal.transactions.queries import summary
from tests.booking.factories import (
    at,
    captured_event,
    credit_wallet,
    post_webhook,
    quoted_checkout,
)
from tests.payments.test_payments_checkout import CALLBACK, fresh, hold
from tests.payments.test_payments_links import admin_hold
from tests.reconcile.helpers import case_for, later, run_day
from tests.refunds.helpers import quoted_cancel


def _wrong_then_right(app, world, users, gateway):
    patient = users(world.patients[0])
    visit_id = hold(world, patient, day=4)
    order_id = quoted_checkout(patient, visit_id, callback_url=CALLBACK).payment.razorpay_order_id
    wrong = gateway.pay(order_id)["razorpay_payment_id"]
    gateway.sandbox.webhooks.pending = []
    post_webhook(app, captured_event(gateway, wrong, 100), "evt_wrong")
    assert fresh(visit_id).status == "PENDING_PAYMENT"
    # Razorpay leaves an order paid short open: the patient pays it again, in full.
    gateway.sandbox.store.orders[order_id]["status"] = "attempted"
    right = gateway.pay(order_id)["razorpay_payment_id"]
    gateway.deliver()
    return patient, visit_id, order_id, wrong, right


def _row(razorpay_payment_id):
    return db.session.scalar(
        sa.select(Payment).where(Payment.razorpay_payment_id == razorpay_payment_id)
    )


def test_the_right_capture_confirms_and_the_wrong_one_stays_on_its_own_row(
    app, world, users, gateway, clock
):
    patient, visit_id, order_id, wrong, right = _wrong_then_right(app, world, users, gateway)
    visit = fresh(visit_id)
    assert visit.status == "CONFIRMED"
    price = sum(i.gateway_paid for i in visit.items)
    paying, extra = _row(right), _row(wrong)
    assert paying is not None and extra is not None and paying.id != extra.id
    # The order's row paid the visit; the wrong capture is a row of its own, in the wallet.
    assert paying.razorpay_order_id == order_id
    assert (paying.status, paying.captured_amount, records.paid_for_nothing(paying)) == (
        "SUCCESSFUL",
        price,
        False,
    )
    assert (extra.status, extra.captured_amount, records.paid_for_nothing(extra)) == (
        "SUCCESSFUL",
        100,
        True,
    )
    assert prices.wallet_balance(patient.id) == 100
    # The visit's page: paid what it costs (the ₹1 is in the wallet, not paid for it).
    assert refund_queries.visit_money(visit).paid == price
    # Money in is both captures; the receipt lists the one that paid.
    today = utcnow().astimezone(CLINIC_TZ).date()
    assert summary(MovementFilter(start=today, end=today)).money_in == price + 100
    assert [p[3] for p in receipts.receipt(visit).payments] == [right]
    assert receipts.breakup_of(paying).paid == price and receipts.breakup_of(extra) is None
    # Reconciliation finds each capture on a row of ours, as the gateway has it.
    later(clock)
    run = run_day(world)
    assert run.status == "finished", run.error
    for reference in (right, wrong):
        case = case_for(reference, kind="payment")
        assert (case.status, case.reason) == ("matched", None), reference


def test_a_cancellation_refunds_the_capture_that_paid(app, world, users, gateway, clock):
    patient, visit_id, _order_id, wrong, right = _wrong_then_right(app, world, users, gateway)
    visit = fresh(visit_id)
    quoted_cancel(patient, visit_id, [visit.items[0].id])
    db.session.expire_all()
    refunds = db.session.scalars(sa.select(Refund).where(Refund.visit_id == visit_id)).all()
    # Back through the capture that paid, none of it through the one in the wallet.
    assert [(r.destination, r.razorpay_payment_id) for r in refunds] == [("GATEWAY", right)]
    assert refunds[0].amount == sum(i.gateway_paid for i in visit.items)  # days ahead: all
    assert prices.wallet_balance(patient.id) == 100  # the wrong capture is still there


def test_after_the_wrong_amount_the_back_office_still_waits_for_the_order(
    app, world, users, gateway
):
    """The wrong capture's row is the visit's newest, but not its payment: the admin's list
    and the payments monitor show the order still pending, not a successful payment."""
    patient = users(world.patients[0])
    visit_id = hold(world, patient, day=4)
    order = quoted_checkout(patient, visit_id, callback_url=CALLBACK).payment
    wrong = gateway.pay(order.razorpay_order_id)["razorpay_payment_id"]
    gateway.sandbox.webhooks.pending = []
    post_webhook(app, captured_event(gateway, wrong, 100), "evt_wrong")
    visit = fresh(visit_id)
    assert desk.current_payment(visit).id == order.id
    assert desk.payment_status(visit) == "PENDING"
    assert desk.hint(visit).action != "COMPLETE"
    assert [p.id for p in desk.payments_page().items] == [order.id]


def test_a_link_paid_the_wrong_amount_is_renewed_when_it_runs_out(
    app, world, users, gateway, clock
):
    """The wrong capture's row (kind LINK, newer than the link) is not a newer link: when
    the link runs out, a new one is made and sent as for any link not paid."""
    admin, visit_id = admin_hold(world, users, at(2, 10))
    link = links.create_payment_link(admin, visit_id)
    gateway.pay_link(link.link_url)
    gateway.sandbox.webhooks.pending = []
    [wrong] = gateway.sandbox.store.payments
    post_webhook(app, captured_event(gateway, wrong, 100), "evt_wrong_link")
    clock.shift(link.expires_at - utcnow() + timedelta(minutes=1))
    links.payment_link_expired(link.id)
    visit = fresh(visit_id)
    [new] = [p for p in visit.payments if p.status == "PENDING"]
    assert new.kind == "LINK" and new.id != link.id and new.link_url
    assert visit.status == "PENDING_PAYMENT"


def _paid_wrong_with_wallet(app, world, users, gateway, *, webhook=True):
    """A checkout of ₹100 from the wallet and the rest online, its order captured for ₹1
    (told by its webhook, or ``webhook=False``: every webhook lost)."""
    patient = users(world.patients[0])
    credit_wallet(patient.id, 10_000)
    visit_id = hold(world, patient, day=4)
    order = quoted_checkout(patient, visit_id, 10_000, callback_url=CALLBACK).payment
    assert prices.wallet_balance(patient.id) == 0  # ₹100 reserved for the checkout
    wrong = gateway.pay(order.razorpay_order_id)["razorpay_payment_id"]
    gateway.sandbox.webhooks.pending = []
    event = captured_event(gateway, wrong, 100)  # the gateway's record says ₹1
    if webhook:
        post_webhook(app, event, "evt_wrong")
    return patient, visit_id, order, wrong


def _asked(monkeypatch):
    """The orders the gateway is asked about from now on."""
    asked, fetch = [], get_payin().fetch_order_payments
    monkeypatch.setattr(
        get_payin(),
        "fetch_order_payments",
        lambda order_id: asked.append(order_id) or fetch(order_id),
    )
    return asked


def test_the_sweep_expires_a_hold_whose_only_capture_was_the_wrong_amount(
    app, world, users, gateway, clock, monkeypatch, ledger_stays_sound
):
    patient, visit_id, order, wrong = _paid_wrong_with_wallet(app, world, users, gateway)
    visit = fresh(visit_id)
    assert visit.status == "PENDING_PAYMENT" and visit.attention == "AMOUNT_MISMATCH"
    assert prices.wallet_balance(patient.id) == 100  # the wrong ₹1, kept for the patient

    # The patient never pays the order again; its hold runs out and the sweep runs.
    clock.move_to(visit.hold_expires_at + timedelta(minutes=5))
    asked = _asked(monkeypatch)
    assert expire_holds(now=utcnow()) == 1
    visit = fresh(visit_id)
    assert visit.status == "EXPIRED" and visit.items[0].status == "EXPIRED"
    assert not any(c.live for c in visit.items[0].claims)
    assert db.session.get(Payment, order.id).status == "EXPIRED"
    assert _row(wrong).status == "SUCCESSFUL" and records.paid_for_nothing(_row(wrong))
    # The ₹100 the checkout reserved is back in the wallet with the ₹1, once.
    assert prices.wallet_balance(patient.id) == 10_100 and balance(WALLET_RESERVED) == 0
    assert asked == [order.razorpay_order_id]
    # The next sweeps find nothing to expire and no longer ask Razorpay about the order.
    clock.shift(timedelta(minutes=1))
    assert expire_holds() == 0 and asked == [order.razorpay_order_id]
    assert prices.wallet_balance(patient.id) == 10_100


def test_a_wrong_capture_whose_webhooks_were_lost_goes_to_the_wallet_and_the_hold_expires(
    app, world, users, gateway, clock, ledger_stays_sound
):
    """The sweep finds the capture at Razorpay, puts it in the wallet as its webhook would,
    and expires the hold in the same run."""
    patient, visit_id, order, wrong = _paid_wrong_with_wallet(
        app, world, users, gateway, webhook=False
    )
    assert prices.wallet_balance(patient.id) == 0 and _row(wrong) is None
    clock.move_to(fresh(visit_id).hold_expires_at + timedelta(minutes=5))
    assert expire_holds() == 1
    visit = fresh(visit_id)
    assert visit.status == "EXPIRED" and visit.attention == "AMOUNT_MISMATCH"
    assert records.paid_for_nothing(_row(wrong)) and _row(wrong).amount == 100
    assert prices.wallet_balance(patient.id) == 10_100 and balance(WALLET_RESERVED) == 0
    # Its webhook arriving after all changes nothing.
    post_webhook(app, captured_event(gateway, wrong, 100), "evt_wrong_late")
    assert fresh(visit_id).status == "EXPIRED" and prices.wallet_balance(patient.id) == 10_100


def test_a_right_capture_whose_webhooks_were_lost_confirms_and_is_not_expired(
    app, world, users, gateway, clock, ledger_stays_sound
):
    patient = users(world.patients[0])
    visit_id = hold(world, patient, day=4)
    order = quoted_checkout(patient, visit_id, callback_url=CALLBACK).payment
    gateway.pay(order.razorpay_order_id)
    gateway.sandbox.webhooks.pending = []
    clock.move_to(fresh(visit_id).hold_expires_at + timedelta(minutes=5))
    assert expire_holds() == 0
    visit = fresh(visit_id)
    assert visit.status == "CONFIRMED" and db.session.get(Payment, order.id).status == "SUCCESSFUL"


def test_the_sweep_keeps_a_hold_while_razorpay_cannot_say(
    app, world, users, gateway, clock, monkeypatch
):
    """Expiring blind could leave a capture we were never told of on no booking."""
    patient, visit_id, order, _wrong = _paid_wrong_with_wallet(app, world, users, gateway)
    clock.move_to(fresh(visit_id).hold_expires_at + timedelta(minutes=5))

    def down(order_id):
        raise GatewayUnavailable("Razorpay unreachable")

    monkeypatch.setattr(get_payin(), "fetch_order_payments", down)
    assert expire_holds() == 0
    assert fresh(visit_id).status == "PENDING_PAYMENT" and prices.wallet_balance(patient.id) == 100
    monkeypatch.undo()
    assert expire_holds() == 1  # the next sweep, answered
    assert fresh(visit_id).status == "EXPIRED" and prices.wallet_balance(patient.id) == 10_100
