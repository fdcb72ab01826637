"""Query budgets for the webhooks that follow a paid checkout: Razorpay sends
payment.authorized, payment.captured and order.paid for every payment, after the signed
return has already confirmed the visit. The authorized event is stored by the endpoint and
processed by a job (its line on the payment's timeline); the two capture events are
repeats, settled when they arrive: stored processed, with no job
(tests/payments/test_webhooks_settled.py). Their statements were most of what the worker
spent under load (docs/performance.md). A new statement on this path fails here."""

from portal.booking import checkout
from tests.booking.factories import credit_wallet
from tests.payments.test_payments_checkout import CALLBACK, fresh, hold
from tests.querycount import counted_queries

# authorized: stored (one insert unless the id is known, the outbox item) + processed (the
# outbox row, the claim returning the event, the payment, the visit locked, its timeline
# line, the outbox row done). The capture events: the payment by its order (captured
# already under this id), a reschedule fee paid by that order (none), the event stored
# processed.
BUDGETS = {"payment.authorized": 9, "payment.captured": 3, "order.paid": 3}


def test_the_webhooks_after_a_confirmed_checkout_stay_within_their_budgets(
    app, world, users, gateway
):
    patient = users(world.patients[0])
    credit_wallet(patient.id, 10_000)
    visit_id = hold(world, patient)
    result = checkout.checkout(patient, visit_id, 10_000, CALLBACK)
    params = gateway.pay(result.payment.razorpay_order_id)
    assert checkout.complete_checkout_callback(params).status == "CONFIRMED"

    webhooks = gateway.sandbox.webhooks
    queued = list(webhooks.pending)
    assert sorted(d.event for d in queued) == sorted(BUDGETS)
    spent = {}
    for delivery in queued:
        webhooks.pending = [delivery]
        with counted_queries() as statements:
            assert gateway.deliver() == [(delivery.event_id, 200)]
        spent[delivery.event] = len(statements)
    assert spent == BUDGETS, spent

    # The same event again (a redelivery): the insert finds its id known, the stored row's
    # id is read for the log line, and nothing else is read or written.
    webhooks.pending = [queued[0]]
    with counted_queries() as statements:
        gateway.deliver()
    assert len(statements) == 2

    visit = fresh(visit_id)
    assert visit.status == "CONFIRMED"
    # The authorized line was added to the timeline once, beside what the return wrote.
    (online,) = [p for p in visit.payments if p.razorpay_order_id]
    lines = [a.event for a in online.attempts]
    assert lines.count("authorized") == 1 and len(lines) == len(set(lines))
