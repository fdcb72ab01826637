"""Payment events that only repeat what the signed return did (a capture, or an
authorization of a payment already captured) are settled when they arrive: stored
processed, with no job (portal.gateway.webhook_processing.settled_at_receipt). Every other
event is processed by a job as before: an event is settled only when every handler of its
type says it would do nothing."""

import sqlalchemy as sa

from portal.booking import checkout
from portal.extensions import db
from portal.gateway import webhook_processing
from portal.gateway.models import WebhookEvent
from portal.outbox import OutboxItem
from tests.booking.factories import quoted_checkout
from tests.payments.test_payments_checkout import CALLBACK, confirmations, fresh, hold


def _webhook_jobs():
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(OutboxItem)
        .where(OutboxItem.job == webhook_processing.JOB_NAME)
    )


def _events():
    """{event type: (processed, attempts)} of the stored events."""
    db.session.expire_all()
    rows = db.session.execute(
        sa.select(WebhookEvent.event_type, WebhookEvent.processed_at, WebhookEvent.attempts)
    ).all()
    return {t: (at is not None, attempts) for t, at, attempts in rows}


def _paid(world, users, gateway, returned):
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    params = gateway.pay(result.payment.razorpay_order_id)
    if returned:
        assert checkout.complete_checkout_callback(params).visit.status == "CONFIRMED"
    return visit_id, params


def _timeline(visit_id):
    (online,) = [p for p in fresh(visit_id).payments if p.razorpay_order_id]
    return [a.event for a in online.attempts]


def test_the_events_after_the_return_are_settled_without_a_job(world, users, gateway):
    visit_id, _ = _paid(world, users, gateway, returned=True)
    answers = gateway.deliver()  # payment.authorized, payment.captured, order.paid
    assert [status for _id, status in answers] == [200, 200, 200]
    assert _webhook_jobs() == 0
    assert _events() == {
        "payment.authorized": (True, 0),  # settled at receipt: never attempted
        "payment.captured": (True, 0),
        "order.paid": (True, 0),
    }
    assert fresh(visit_id).status == "CONFIRMED" and confirmations(visit_id) == 1
    # A captured payment's authorization adds nothing: the return's line says it all.
    assert "authorized" not in _timeline(visit_id)


def test_a_capture_before_the_return_is_captured_by_its_job(world, users, gateway):
    visit_id, params = _paid(world, users, gateway, returned=False)
    gateway.deliver()
    # The capture event found nothing captured: its job confirmed the visit. By the time
    # order.paid arrived (jobs run inline after each commit here) it was a repeat.
    assert _webhook_jobs() == 2
    assert _events() == {
        "payment.authorized": (True, 1),  # processed by its job (inline here)
        "payment.captured": (True, 1),
        "order.paid": (True, 0),
    }
    assert fresh(visit_id).status == "CONFIRMED"
    # The authorization came first, while nothing was captured: its line is there.
    assert _timeline(visit_id).count("authorized") == 1
    assert checkout.complete_checkout_callback(params).visit.status == "CONFIRMED"
    assert confirmations(visit_id) == 1


def test_an_event_is_settled_only_when_every_handler_of_its_type_says_so(
    world, users, gateway, monkeypatch
):
    seen = []

    def audit_captures(event):  # a handler that cannot tell in advance
        seen.append(event.event_type)

    monkeypatch.setitem(
        webhook_processing.HANDLERS,
        "payment.captured",
        [*webhook_processing.HANDLERS["payment.captured"], audit_captures],
    )
    _paid(world, users, gateway, returned=True)
    gateway.deliver()
    assert seen == ["payment.captured"]
    assert _webhook_jobs() == 1  # the capture's; authorized and order.paid are still settled
    assert _events()["payment.captured"] == (True, 1)
    # No handler at all: processed by a job as ever (it marks the event processed).
    unknown = WebhookEvent(event_type="payment.dispute.created", payload={})
    assert webhook_processing.settled_at_receipt(unknown) is False


def test_a_predicate_that_fails_leaves_the_event_to_its_job(world, users, gateway, monkeypatch):
    """A fault in a predicate must not lose the event: it is stored and gets its job."""
    from portal.booking import webhooks

    def broken(event):
        raise KeyError("id")

    monkeypatch.setitem(webhook_processing.SETTLED, webhooks.payment_captured, broken)
    visit_id, _ = _paid(world, users, gateway, returned=True)
    assert [status for _id, status in gateway.deliver()] == [200, 200, 200]
    assert _webhook_jobs() == 2
    assert _events() == {
        "payment.authorized": (True, 0),
        "payment.captured": (True, 1),  # its job found a repeat and did nothing
        "order.paid": (True, 1),
    }
    assert confirmations(visit_id) == 1


def test_an_authorization_after_the_capture_adds_nothing_in_its_job(
    world, users, gateway, monkeypatch
):
    """The handler keeps its predicate's word when it runs as a job (here: a predicate
    that cannot tell)."""
    from portal.booking import webhooks

    monkeypatch.setitem(webhook_processing.SETTLED, webhooks.payment_authorized, lambda e: False)
    visit_id, _ = _paid(world, users, gateway, returned=True)
    gateway.deliver()
    assert _events()["payment.authorized"] == (True, 1)  # processed by its job
    assert "authorized" not in _timeline(visit_id)


def test_an_authorization_read_before_the_capture_committed_adds_nothing(world, users, gateway):
    """The webhook's job read the payment before a return captured it: the use case reads
    it again under the visit's lock and adds nothing."""
    from sqlalchemy.orm.attributes import set_committed_value

    from portal.booking import payment_events
    from portal.payments.models import Payment

    visit_id, params = _paid(world, users, gateway, returned=False)
    (payment,) = [p for p in fresh(visit_id).payments if p.razorpay_order_id]
    payment_id = payment.id
    assert checkout.complete_checkout_callback(params).visit.status == "CONFIRMED"
    stale = db.session.get(Payment, payment_id)
    set_committed_value(stale, "captured_amount", None)  # as it was read before
    payment_events.authorized(
        stale, razorpay_payment_id=params["razorpay_payment_id"], amount=stale.amount
    )
    assert "authorized" not in _timeline(visit_id)
