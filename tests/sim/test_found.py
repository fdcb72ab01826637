"""What the simulation found, each as the smallest history that shows it.

Seed 19 (``python -m tests.sim --seed 19 --steps 40 --lose-webhooks``): a
patient pays on the gateway's checkout page and never comes back (tab closed, no
callback), and the ``payment.captured`` / ``order.paid`` webhooks are lost for good.
The hold then expires (``booking.expire_holds``) without asking the gateway about the
order, and nothing else ever does (``RazorpayPayIn.fetch_order_payments`` exists but no
sweep calls it): the money stays captured at Razorpay, known to no one -- not on a
booking, not refunded, not in the wallet. Fixed: ``booking.expire_holds`` asks the
gateway about the order first and applies a captured payment as a webhook would."""

from contextlib import contextmanager
from datetime import timedelta

from portal.booking import checkout, visits
from portal.extensions import db
from tests.booking.factories import at, quoted_checkout
from tests.refunds.helpers import quoted_cancel, quoted_provider_cancel
from tests.sim import invariants
from tests.sim.harness import Sim
from tests.sim.world import populate, reset


@contextmanager
def _history(sim_app):
    """A history of its own (seed 0) on the emptied, populated world: (sim, world)."""
    sim = Sim(sim_app, seed=0)
    with sim.running():
        reset(sim_app)
        yield sim, populate(sim_app)


def _hold(sim, world, start, visit_id=None):
    """A consultation with doctors[0] (paid out INSTANT) at ``start`` for patients[1]."""
    patient = sim.user(world.patients[1])
    return visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=start,
        visit_id=visit_id,
    )


def _pay_by_callback(sim, order_id, complete):
    """The order paid on the sandbox's checkout page, and the signed return handed to
    ``complete`` (a visit's or a reschedule fee's)."""
    payment = sim.sandbox.store.pay_order(order_id)
    signature = sim.sandbox.store.checkout_signature(order_id, payment["id"])
    return complete(
        {
            "razorpay_order_id": order_id,
            "razorpay_payment_id": payment["id"],
            "razorpay_signature": signature,
        }
    )


def test_a_capture_whose_webhooks_are_lost_is_still_found(sim_app):
    with _history(sim_app) as (sim, world):
        sandbox = sim.sandbox
        patient = sim.user(world.patients[1])
        item = _hold(sim, world, at(2, 11))
        result = quoted_checkout(patient, item.master_id, 0, callback_url="http://portal.test/cb")
        payment = sandbox.store.pay_order(result.payment.razorpay_order_id)  # no callback
        assert payment["status"] == "captured"
        with sandbox.webhooks._lock:  # every webhook of the payment lost for good
            sandbox.webhooks.pending.clear()
        # A day passes; the scheduler and the worker run as usual.
        for _ in range(3):
            sim.clock.shift(timedelta(hours=8))
            sim.periodic()
            while sim.redis:
                sim._run(sim.redis.pop(0))
        db.session.expire_all()
        assert invariants.gateway_agrees(sandbox) == []


def test_a_signed_capture_the_gateway_never_made_mints_no_money(sim_app):
    """The simulation's ``clearing_backed_by_gateway`` catches issue #15's first finding:
    an event signed with the embedded secret claims ₹1,00,000 for an open order."""
    import json

    from portal.gateway.webhooks import sign_body

    with _history(sim_app) as (sim, world):
        patient = sim.user(world.patients[1])
        item = _hold(sim, world, at(2, 11))
        result = quoted_checkout(patient, item.master_id, 0, callback_url="http://portal.test/cb")
        order_id = result.payment.razorpay_order_id
        entity = {
            "id": "pay_Forged00000001",
            "entity": "payment",
            "amount": 100_000_00,
            "currency": "INR",
            "status": "captured",
            "order_id": order_id,
            "method": "upi",
            "captured": True,
        }
        body = json.dumps(
            {
                "entity": "event",
                "event": "payment.captured",
                "contains": ["payment"],
                "payload": {"payment": {"entity": entity}},
                "created_at": 1780000000,
            }
        ).encode()
        secret = sim_app.config["RAZORPAY_WEBHOOK_SECRET"]
        answer = sim_app.test_client().post(
            "/webhooks/razorpay",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Razorpay-Event-Id": "evt_forged_1",
                "X-Razorpay-Signature": sign_body(body, secret),
            },
        )
        assert answer.status_code < 500
        while sim.redis:
            sim._run(sim.redis.pop(0))
        db.session.expire_all()
        assert invariants.clearing_backed_by_gateway(sim.sandbox) == []


def test_a_negative_settlement_is_not_money_coming_in(sim_app):
    """Seed 121 (``--steps 25``): a day whose refunds exceed its captures settles negative,
    the gateway taking the money back from the bank: a debit to gateway clearing that only
    returns what the refund took out, which ``clearing_backed_by_gateway`` counted as money
    coming in. The seed's history moved once a signed return's webhooks stopped making jobs
    (docs/gateway.md), so the history is built here step by step: paid one day, the
    refund processed the next, each day settled and read."""
    import sqlalchemy as sa

    from portal.ledger import accounts as chart
    from portal.ledger.check import SETTLEMENT_KIND
    from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction

    with _history(sim_app) as (sim, world):
        sandbox = sim.sandbox
        patient = sim.user(world.patients[1])
        item = _hold(sim, world, at(4, 11))
        visit_id, item_id = item.master_id, item.id
        result = quoted_checkout(patient, visit_id, 0, callback_url="http://portal.test/cb")
        _pay_by_callback(sim, result.payment.razorpay_order_id, checkout.complete_checkout_callback)
        sim.settle()  # raises SimFailure on a broken invariant
        sim.clock.shift(timedelta(days=1))
        patient = sim.user(world.patients[1])
        quoted_cancel(patient, visit_id, [item_id], reason="away")
        sim.settle()
        sim.clock.shift(timedelta(days=1))
        sim.settle()  # the refund's day settled; read by the next daily fetch
        sim.clock.shift(timedelta(days=1))
        sim.settle()
        negative = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(LedgerEntry)
            .join(LedgerAccount, LedgerEntry.account_id == LedgerAccount.id)
            .join(LedgerTransaction, LedgerEntry.transaction_id == LedgerTransaction.id)
            .where(
                LedgerAccount.code == chart.GATEWAY_CLEARING,
                LedgerTransaction.kind == SETTLEMENT_KIND,
                LedgerEntry.amount > 0,
            )
        )
        assert negative == 1  # the history holds its negative settlement
        assert invariants.clearing_backed_by_gateway(sandbox) == []
        assert invariants.gateway_agrees(sandbox) == []


def test_a_fee_share_given_back_after_its_payout_may_take_the_payable_below_zero(sim_app):
    """Seed 274 (``--steps 25``, session 17): a rescheduled booking's fee pays its share to
    the provider, an INSTANT payout pays it out, then the provider cancels the booking: the
    patient gets the fee back, the share is taken back from the payable (POLICY.md:
    "Penalties and reversals reduce the payable") with the ₹250 penalty, and the payable
    goes below zero by both. ``no_negative_balances`` allowed only the penalty."""
    from portal.booking import reschedule_payment
    from portal.booking.models import IndividualBooking
    from portal.ledger import accounts as chart
    from portal.payouts import completion
    from tests.refunds.helpers import quoted_move

    with _history(sim_app) as (sim, world):  # doctors[0] is paid out INSTANT
        moved = _hold(sim, world, at(2, 15))  # 53 h ahead: a 10% reschedule fee
        moved_id, first = moved.id, moved.master_id
        done_id = _hold(sim, world, at(1, 11), visit_id=first).id  # tomorrow
        patient = sim.user(world.patients[1])
        result = quoted_checkout(patient, first, 0, callback_url="http://portal.test/cb")
        _pay_by_callback(sim, result.payment.razorpay_order_id, checkout.complete_checkout_callback)
        sim.settle()

        patient = sim.user(world.patients[1])
        fee = quoted_move(
            patient, moved_id, at(4, 11), pay_with="gateway", callback_url="http://portal.test/r"
        )
        _pay_by_callback(
            sim, fee.reschedule.razorpay_order_id, reschedule_payment.complete_callback
        )
        sim.settle()

        done = db.session.get(IndividualBooking, done_id)
        sim.clock.move_to(done.start_at)
        doctor_id = done.providers[0].user_id
        completion.start_booking(sim.user(doctor_id), done_id)
        completion.complete_booking(sim.user(doctor_id), done_id)
        sim.settle()  # the INSTANT payout pays out the completion and the fee's share

        quoted_provider_cancel(sim.user(doctor_id), moved_id, "away that week")
        sim.settle()  # raises SimFailure on a broken invariant
        payable = invariants.balance(chart.provider_payable(world.doctors[0]))
        assert payable < -25_000  # below zero by more than the penalty
        assert invariants.no_negative_balances() == []
