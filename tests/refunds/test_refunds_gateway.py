"""Refunds through the sandbox: retried after injected timeouts with the same idempotency
key, Razorpay failures retried as new refunds then raised to admins, the poll for
stragglers, admin retry / send to wallet. Each ends with exactly one refund at the
sandbox and one in the ledger."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.db import utcnow
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.notify.models import Notification
from portal.refunds import cancel as refunds_cancel
from portal.refunds import failed as refunds_failed
from portal.refunds import lookup as refunds_lookup
from portal.refunds.common import CancellationError
from portal.refunds.models import Refund
from portal.refunds.tasks import poll_refunds
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay, ledger_kinds, settle_refunds

START = at(4, 10)


@pytest.fixture
def fast_gateway(app, gateway):
    """Short client timeout, no adapter-level retries: every retry is the service's."""
    keys = ("RAZORPAY_TIMEOUT", "RAZORPAY_RETRIES")
    saved = {k: app.config[k] for k in keys if k in app.config}
    app.config.update(RAZORPAY_TIMEOUT=0.4, RAZORPAY_RETRIES=0)
    app.extensions.pop("gateway_adapters", None)
    yield gateway
    for k in keys:
        app.config.pop(k, None)
    app.config.update(saved)
    app.extensions.pop("gateway_adapters", None)


def cancelled(world, users, gateway):
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], START)])
    refunds_cancel.cancel_items_as_patient(patient, visit.id, [visit.items[0].id])
    db.session.expire_all()
    [refund] = refunds_lookup.refunds_for_visit(visit.id)
    return patient, visit, refund


def later(minutes=60):
    return utcnow() + timedelta(minutes=minutes)


def test_timeouts_are_retried_with_the_same_key(world, users, fast_gateway):
    gw = fast_gateway
    gw.sandbox.set_faults(timeout_next=2, timeout_seconds=1.0, match="refund")
    _, visit, refund = cancelled(world, users, gw)
    key = refund.idempotency_key
    assert (refund.status, refund.attempts, refund.razorpay_refund_id) == ("PENDING", 1, None)
    assert refund.next_retry_at is not None and "No answer" in refund.failure_reason
    # The first attempt was processed at the sandbox even though its answer was lost.
    assert len(gw.sandbox.store.refunds) == 1
    poll_refunds(now=later())
    db.session.expire_all()
    refund = db.session.get(Refund, refund.id)
    assert refund.attempts == 2 and refund.razorpay_refund_id is None
    poll_refunds(now=later(120))
    db.session.expire_all()
    refund = db.session.get(Refund, refund.id)
    assert refund.attempts == 3 and refund.razorpay_refund_id
    assert refund.idempotency_key == key
    settle_refunds(gw)
    refund = db.session.get(Refund, refund.id)
    assert refund.status == "PROCESSED"
    assert len(gw.sandbox.store.refunds) == 1
    assert [r["id"] for r in gw.sandbox.store.refunds.values()] == [refund.razorpay_refund_id]
    assert len(ledger_kinds("refund_processed")) == 1
    assert balance(chart.REFUNDS_PAYABLE) == 0


def test_unreachable_gateway_fails_then_alerts_and_admin_retries(world, users, fast_gateway):
    gw = fast_gateway
    gw.sandbox.set_faults(fail_next=3, error_status=503, match="refund")
    _, visit, refund = cancelled(world, users, gw)
    poll_refunds(now=later())
    poll_refunds(now=later(120))
    db.session.expire_all()
    refund = db.session.get(Refund, refund.id)
    assert (refund.status, refund.attempts) == ("FAILED", 3)
    assert not gw.sandbox.store.refunds
    alerts = db.session.scalars(
        sa.select(Notification).where(Notification.kind == "alert.REFUND_FAILED")
    ).all()
    assert [a.user_id for a in alerts] == [world.admin] and alerts[0].priority == "HIGH"
    admin = users(world.admin)
    target = refunds_failed.retry_refund(admin, refund.id)
    assert target.id == refund.id  # never reached Razorpay: same row, same key
    db.session.expire_all()
    refund = db.session.get(Refund, refund.id)
    assert refund.status == "PENDING" and refund.razorpay_refund_id
    settle_refunds(gw)
    assert db.session.get(Refund, refund.id).status == "PROCESSED"
    assert len(gw.sandbox.store.refunds) == 1 and len(ledger_kinds("refund_processed")) == 1


def test_failed_at_razorpay_is_retried_as_a_new_refund(world, users, gateway):
    gateway.sandbox.set_faults(refund_outcome="failed")
    _, visit, first = cancelled(world, users, gateway)
    settle_refunds(gateway)  # refund.failed → a successor with a new key
    rows = refunds_lookup.refunds_for_visit(visit.id)
    assert [(r.status, r.superseded) for r in rows] == [("FAILED", True), ("PENDING", False)]
    assert rows[1].idempotency_key != rows[0].idempotency_key
    gateway.sandbox.set_faults(refund_outcome=None)
    settle_refunds(gateway)
    rows = refunds_lookup.refunds_for_visit(visit.id)
    assert rows[1].status == "PROCESSED"
    processed = [r for r in gateway.sandbox.store.refunds.values() if r["status"] == "processed"]
    assert len(processed) == 1 and len(ledger_kinds("refund_processed")) == 1
    assert balance(chart.REFUNDS_PAYABLE) == 0


def test_failed_every_time_goes_to_admins_who_send_it_to_the_wallet(world, users, gateway):
    gateway.sandbox.set_faults(refund_outcome="failed")
    patient, visit, first = cancelled(world, users, gateway)
    for _ in range(3):
        settle_refunds(gateway)
    rows = refunds_lookup.refunds_for_visit(visit.id)
    assert [r.status for r in rows] == ["FAILED"] * 3 and not rows[-1].superseded
    assert db.session.scalars(
        sa.select(Notification).where(Notification.kind == "alert.REFUND_FAILED")
    ).all()
    admin = users(world.admin)
    wallet = refunds_failed.refund_to_wallet(admin, rows[-1].id, "Bank account closed")
    assert (wallet.destination, wallet.status) == ("WALLET", "PROCESSED")
    assert balance(chart.patient_wallet(patient.id)) == wallet.amount
    assert balance(chart.REFUNDS_PAYABLE) == 0
    with pytest.raises(CancellationError):
        refunds_failed.refund_to_wallet(admin, rows[-1].id, "again")


def test_poll_fetches_stragglers_whose_webhook_was_lost(world, users, gateway):
    gateway.sandbox.set_faults(drop_webhooks=True)
    _, visit, refund = cancelled(world, users, gateway)
    gateway.sandbox.advance(10)
    gateway.deliver()
    db.session.expire_all()
    assert db.session.get(Refund, refund.id).status == "PENDING"
    poll_refunds(now=later(30))
    db.session.expire_all()
    assert db.session.get(Refund, refund.id).status == "PROCESSED"
    assert len(ledger_kinds("refund_processed")) == 1


def test_duplicate_and_out_of_order_webhooks_change_nothing_twice(world, users, gateway):
    gateway.sandbox.set_faults(duplicate_webhooks=True, out_of_order=True)
    _, visit, refund = cancelled(world, users, gateway)
    settle_refunds(gateway)
    settle_refunds(gateway)
    assert db.session.get(Refund, refund.id).status == "PROCESSED"
    assert len(ledger_kinds("refund_processed")) == 1
