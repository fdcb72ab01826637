"""What the simulation found, each as the smallest history that shows it.

Seed 19 (``python -m tests.sim --seed 19 --steps 40 --lose-webhooks``): a
patient pays on the gateway's checkout page and never comes back (tab closed, no
callback), and the ``payment.captured`` / ``order.paid`` webhooks are lost for good.
The hold then expires (``booking.expire_holds``) without asking the gateway about the
order, and nothing else ever does (``RazorpayPayIn.fetch_order_payments`` exists but no
sweep calls it): the money stays captured at Razorpay, known to no one -- not on a
booking, not refunded, not in the wallet. Fixed: ``booking.expire_holds`` asks the
gateway about the order first and applies a captured payment as a webhook would."""

from datetime import timedelta

from portal.booking import checkout, visits
from portal.extensions import db
from tests.booking.factories import at
from tests.sim import invariants
from tests.sim.harness import Sim
from tests.sim.world import populate, reset


def test_a_capture_whose_webhooks_are_lost_is_still_found(sim_app):
    sim = Sim(sim_app, seed=0)
    with sim.running():
        reset(sim_app)
        world = populate(sim_app)
        sandbox = sim.sandbox
        patient = sim.user(world.patients[1])
        item = visits.add_item(
            patient,
            patient_id=patient.id,
            service_id=world.consult,
            provider_ids=[world.doctors[0]],
            clinic_id=world.clinic,
            start_at=at(2, 11),
        )
        result = checkout.checkout(patient, item.master_id, 0, callback_url="http://portal.test/cb")
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

    sim = Sim(sim_app, seed=0)
    with sim.running():
        reset(sim_app)
        world = populate(sim_app)
        patient = sim.user(world.patients[1])
        item = visits.add_item(
            patient,
            patient_id=patient.id,
            service_id=world.consult,
            provider_ids=[world.doctors[0]],
            clinic_id=world.clinic,
            start_at=at(2, 11),
        )
        result = checkout.checkout(patient, item.master_id, 0, callback_url="http://portal.test/cb")
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
    import sqlalchemy as sa

    from portal.ledger import accounts as chart
    from portal.ledger.check import SETTLEMENT_KIND
    from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
    from tests.sim.harness import run_seed

    sim = run_seed(sim_app, 121, steps=25)  # raises SimFailure on a broken invariant
    with sim_app.app_context():
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
    assert sim.log and negative == 1  # the history still holds its negative settlement
