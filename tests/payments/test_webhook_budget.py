"""Query budgets for the webhooks that follow a paid checkout: Razorpay sends
payment.authorized, payment.captured and order.paid for every payment, after the signed
return has already confirmed the visit. All three only repeat what the return did (a
payment captured under that id), so they are settled when they arrive: stored processed,
with no job (tests/payments/test_webhooks_settled.py). Their jobs' statements were most of
what the worker spent under load (docs/performance.md). A new statement on this path fails
here."""

from portal.booking import checkout
from tests.booking.factories import credit_wallet, quoted_checkout
from tests.payments.test_payments_checkout import CALLBACK, fresh, hold
from tests.querycount import counted_queries

# Each: the payment by its order (captured already under this id), the event stored
# processed. The capture events do not also look for a reschedule fee paid by that order:
# the order is the visit payment's, and an order is never both.
BUDGETS = {"payment.authorized": 2, "payment.captured": 2, "order.paid": 2}


def test_the_webhooks_after_a_confirmed_checkout_stay_within_their_budgets(
    app, world, users, gateway
):
    patient = users(world.patients[0])
    credit_wallet(patient.id, 10_000)
    visit_id = hold(world, patient)
    result = quoted_checkout(patient, visit_id, 10_000, CALLBACK)
    params = gateway.pay(result.payment.razorpay_order_id)
    assert checkout.complete_checkout_callback(params).visit.status == "CONFIRMED"

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

    # The same event again (a redelivery): its look-ups at the door as the first time, the
    # insert finds its id known, the stored row's id is read for the log line, and nothing
    # else is read or written.
    webhooks.pending = [queued[0]]
    with counted_queries() as statements:
        gateway.deliver()
    assert len(statements) == spent[queued[0].event] + 1

    visit = fresh(visit_id)
    assert visit.status == "CONFIRMED"
    # An authorization that arrives after the capture adds no line: the return's says it all.
    (online,) = [p for p in visit.payments if p.razorpay_order_id]
    lines = [a.event for a in online.attempts]
    assert "authorized" not in lines and len(lines) == len(set(lines))
