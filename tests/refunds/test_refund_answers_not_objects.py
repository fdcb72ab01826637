"""Razorpay answers a refund with JSON that is not its object (docs/gateway.md, "Errors"):
the SDK indexed into it and raised TypeError, so the refund's job crashed and rolled
back its attempt (PENDING, no attempt counted, no alert: retried by the outbox until
it gave up), and "Send to wallet" answered 500. Now each is the portal's gateway error
and the refund goes the way of any other: a 5xx counts an attempt and is retried under
the same key, then FAILED and alerted; a 4xx is a refusal; a success that cannot be
read is no answer (made once under its key); the wallet is refused until Razorpay can
be read."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.db import utcnow
from portal.extensions import db
from portal.notify.models import Notification
from portal.refunds import failed as refunds_failed
from portal.refunds import lookup as refunds_lookup
from portal.refunds.common import MSG_GATEWAY_UNKNOWN, CancellationError
from portal.refunds.tasks import poll_refunds
from tests.booking.factories import at
from tests.refunds.conftest import _ledger_stays_sound, clock, gateway, users, world  # noqa: F401
from tests.refunds.helpers import book_and_pay, quoted_cancel

CREATE = "POST /v1/payments"  # the refund's create (POST /v1/payments/{id}/refund)


@pytest.fixture(autouse=True)
def _one_try(app, gateway):  # noqa: F811
    """Each call tried once: the odd answer is what the refund's attempt sees."""
    saved = app.config.get("RAZORPAY_RETRIES")
    app.config["RAZORPAY_RETRIES"] = 0
    app.extensions.pop("gateway_adapters", None)
    yield
    app.config.pop("RAZORPAY_RETRIES", None)
    if saved is not None:
        app.config["RAZORPAY_RETRIES"] = saved
    app.extensions.pop("gateway_adapters", None)


def _alerts():
    return db.session.scalars(
        sa.select(Notification).where(Notification.kind == "alert.REFUND_FAILED")
    ).all()


def _cancelled(world, users, gateway):  # noqa: F811
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
    return visit


def _answer(gateway, status, body, match=CREATE, times=50):  # noqa: F811
    gateway.sandbox.set_faults(
        answer_next=times, answer_status=status, answer_body=body, match=match
    )


def _refund(visit):
    db.session.expire_all()
    [refund] = refunds_lookup.refunds_for_visit(visit.id)
    return refund


def _polls(clock):  # noqa: F811
    for minutes in (60, 180, 600):
        clock.move_to(utcnow() + timedelta(minutes=minutes))
        poll_refunds()


@pytest.mark.parametrize("body", ["null", '{"error": "bad description"}', '"an error"'])
def test_a_5xx_not_shaped_as_razorpays_counts_attempts_then_fails_and_alerts(
    app, world, users, gateway, clock, body
):
    visit = _cancelled(world, users, gateway)
    patient = users(world.patients[0])
    _answer(gateway, 503, body)
    quoted_cancel(patient, visit.id, [visit.items[0].id])
    refund = _refund(visit)
    assert (refund.status, refund.attempts) == ("PENDING", 1), refund.failure_reason
    assert refund.next_retry_at is not None  # retried later, under the same key
    assert "without its error object" in refund.failure_reason
    _polls(clock)
    refund = _refund(visit)
    assert not gateway.sandbox.store.refunds
    assert (refund.status, refund.attempts) == ("FAILED", 3), refund.failure_reason
    assert "Razorpay could not be reached" in refund.failure_reason
    assert _alerts()


def test_a_4xx_not_shaped_as_razorpays_is_a_refusal(app, world, users, gateway, clock):
    visit = _cancelled(world, users, gateway)
    patient = users(world.patients[0])
    _answer(gateway, 400, '"an error"')
    quoted_cancel(patient, visit.id, [visit.items[0].id])
    refund = _refund(visit)
    assert (refund.status, refund.attempts) == ("FAILED", 1), refund.failure_reason
    assert refund.failure_reason.startswith(
        "Razorpay refused the refund: Razorpay answered without its error object"
    )
    assert _alerts() and not gateway.sandbox.store.refunds


@pytest.mark.parametrize("body", ["[]", "null"])
def test_a_success_that_is_not_an_object_is_no_answer_and_its_retry_makes_one(
    app, world, users, gateway, clock, body
):
    visit = _cancelled(world, users, gateway)
    patient = users(world.patients[0])
    _answer(gateway, 200, body, times=1)
    quoted_cancel(patient, visit.id, [visit.items[0].id])
    refund = _refund(visit)
    assert (refund.status, refund.attempts, refund.razorpay_refund_id) == ("PENDING", 1, None)
    assert "not a JSON object" in refund.failure_reason
    clock.move_to(utcnow() + timedelta(minutes=60))
    poll_refunds()
    refund = _refund(visit)
    [made] = gateway.sandbox.store.refunds
    assert refund.razorpay_refund_id == made and refund.attempts == 2


@pytest.mark.parametrize(("status", "body"), [(500, "42"), (200, "[]"), (200, "{}")])
def test_send_to_wallet_when_razorpays_list_is_unreadable_is_refused_not_a_500(
    app, world, users, gateway, clock, status, body
):
    """docs/refunds.md: "If Razorpay cannot be asked, the wallet is refused until it can"
    (MSG_GATEWAY_UNKNOWN). The payment's refunds answered oddly (``{}``: no items)."""
    visit = _cancelled(world, users, gateway)
    patient = users(world.patients[0])
    _answer(gateway, 503, "null")
    quoted_cancel(patient, visit.id, [visit.items[0].id])
    _polls(clock)
    refund = _refund(visit)
    assert refund.status == "FAILED" and refund.razorpay_refund_id is None
    _answer(gateway, status, body, match="GET /v1/payments/")
    with pytest.raises(CancellationError) as refused:
        refunds_failed.refund_to_wallet(users(world.admin), refund.id, "card closed")
    assert str(refused.value) == str(MSG_GATEWAY_UNKNOWN)
    refund = _refund(visit)
    assert refund.status == "FAILED" and not refund.superseded
