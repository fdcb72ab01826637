"""Razorpay answers that are JSON but not its objects (an error body ``null``, ``42``,
``"an error"``, ``{"error": "..."}``; a success ``[]``): the razorpay SDK indexed into
them and raised TypeError, a 500 on the patient's pay page and return, and a success
``[]`` read as "another entity" parked a real capture's webhook. Now they are the
portal's gateway errors (docs/gateway.md, "Errors"): the checkout is refused with its
message and writes nothing, the return waits for the webhook, and the webhook's job
fails and is retried like any gateway error, then confirms."""

import pytest
import sqlalchemy as sa

from portal import jobs
from portal.audit.models import AuditEntry
from portal.booking import checkout, lookup, visits
from portal.booking.errors import PaymentError
from portal.extensions import db
from portal.gateway.models import WebhookEvent
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerTransaction
from portal.ledger.service import balance
from portal.notify.models import Notification
from portal.outbox import OutboxItem
from portal.payments.models import Payment, PaymentAttempt
from tests.booking.factories import at, credit_wallet, quoted_checkout
from tests.web.booking.helpers import pay_fields

CALLBACK = "http://portal.test/visits/callback"
# (status, body): a 5xx and a 4xx whose body the SDK indexed into, a success not an object.
ODD = [(500, "null"), (502, "42"), (400, '"an error"'), (400, '{"error": "bad description"}')]
ODD_SUCCESS = [(200, "[]"), (200, "null")]


@pytest.fixture(autouse=True)
def _one_try(app, gateway):
    """Each call tried once (the adapters' own retries are tests/gateway's): the odd
    answer is what the use case sees, without the backoff's seconds."""
    saved = app.config.get("RAZORPAY_RETRIES")
    app.config["RAZORPAY_RETRIES"] = 0
    app.extensions.pop("gateway_adapters", None)
    yield
    app.config.pop("RAZORPAY_RETRIES", None)
    if saved is not None:
        app.config["RAZORPAY_RETRIES"] = saved
    app.extensions.pop("gateway_adapters", None)


def hold(world, patient, hour=10):
    return visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, hour),
    ).master_id


def fresh(visit_id):
    db.session.expire_all()
    return lookup.get_visit(visit_id)


def _written():
    """Rows a checkout or a capture would add, and every payment's status."""
    db.session.expire_all()
    counts = [
        db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (PaymentAttempt, LedgerTransaction, AuditEntry, OutboxItem)
    ]
    return counts, sorted(db.session.execute(sa.select(Payment.id, Payment.status)).all())


def _answer(gateway, status, body, match, times=10):
    gateway.sandbox.set_faults(
        answer_next=times, answer_status=status, answer_body=body, match=match
    )


@pytest.mark.parametrize(("status", "body"), ODD + ODD_SUCCESS)
def test_a_checkout_whose_order_answer_is_not_razorpays_is_refused_and_writes_nothing(
    world, users, gateway, status, body
):
    patient = users(world.patients[0])
    credit_wallet(patient.id, 10_000)
    visit_id = hold(world, patient)
    before = _written()
    _answer(gateway, status, body, "POST /v1/orders")
    with pytest.raises(PaymentError) as refused:
        quoted_checkout(patient, visit_id, 10_000, CALLBACK)
    assert refused.value.message == checkout.MSG_GATEWAY_DOWN
    assert _written() == before  # no payment, no reserved wallet, no audit, no job
    assert balance(chart.patient_wallet(patient.id)) == 10_000
    assert fresh(visit_id).status == "DRAFT"
    _answer(gateway, 200, "{}", "", times=0)
    result = quoted_checkout(patient, visit_id, 10_000, CALLBACK)
    assert result.payment.razorpay_order_id in gateway.sandbox.store.orders


def test_the_pay_page_says_payments_are_unavailable_not_a_500(app, client, world, users, gateway):
    from tests.refunds.helpers import login, with_known_passwords

    with_known_passwords()
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    login(client, patient.email)
    fields = pay_fields(client, visit_id)
    _answer(gateway, 500, '"an error"', "POST /v1/orders")
    answer = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422, html[:500]
    assert "Payments are unavailable right now" in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0


@pytest.mark.parametrize(("status", "body"), [*ODD[:2], *ODD_SUCCESS])
def test_a_return_whose_payment_answer_is_not_razorpays_waits_for_the_webhook(
    app, world, users, gateway, status, body
):
    """The signed return cannot confirm the payment with the gateway: nothing written, the
    patient told it is being confirmed (as when Razorpay is unreachable)."""
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    order_id = quoted_checkout(patient, visit_id, callback_url=CALLBACK).payment.razorpay_order_id
    params = gateway.pay(order_id)
    before = _written()
    _answer(gateway, status, body, "GET /v1/payments/")
    response = app.test_client().post(f"/me/visits/{visit_id}/paid", data=params)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert response.headers["Location"].endswith(
        f"/me/visits/{visit_id}/returned?outcome=confirming"
    )
    assert _written() == before and fresh(visit_id).status == "PENDING_PAYMENT"


def _webhook_jobs():
    return db.session.scalars(
        sa.select(OutboxItem).where(OutboxItem.job == "gateway.process_webhook")
    ).all()


@pytest.mark.parametrize(("status", "body"), [ODD[0], ODD_SUCCESS[0]])
def test_a_capture_webhook_whose_fetch_is_answered_oddly_is_retried_not_parked(
    app, world, users, gateway, status, body
):
    """The capture's job confirms the payment with the gateway, which answers oddly: the
    job fails (rolled back, its error kept on the event) and is retried like any gateway
    error; no event is parked, no mismatch alert. Razorpay answering again, it confirms."""
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    order_id = quoted_checkout(patient, visit_id, callback_url=CALLBACK).payment.razorpay_order_id
    gateway.pay(order_id)
    _answer(gateway, status, body, "GET /v1/payments/", times=100)
    gateway.deliver()
    db.session.expire_all()
    assert fresh(visit_id).status == "PENDING_PAYMENT"
    events = db.session.scalars(
        sa.select(WebhookEvent).where(WebhookEvent.event_type != "payment.authorized")
    ).all()  # an authorization's line is written without asking the gateway
    assert len(events) == 2 and all(e.processed_at is None for e in events), [
        e.last_error for e in events
    ]
    errors = {e.last_error for e in events}
    assert all("GatewayUnavailable: Razorpay answered" in (e or "") for e in errors), errors
    assert not db.session.scalars(
        sa.select(Notification).where(Notification.kind == "alert.GATEWAY_MISMATCH")
    ).all()
    pending = [job.id for job in _webhook_jobs() if job.done_at is None]
    assert pending
    _answer(gateway, 200, "{}", "", times=0)
    for job_id in pending:
        jobs.run_outbox_item(job_id)  # the outbox's retry, Razorpay answering again
    assert fresh(visit_id).status == "CONFIRMED"
