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
from portal.refunds import failed as refunds_failed
from portal.refunds import lookup as refunds_lookup
from portal.refunds.common import MSG_AT_GATEWAY, MSG_GATEWAY_UNKNOWN, CancellationError
from portal.refunds.models import Refund
from portal.refunds.tasks import poll_refunds
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay, ledger_kinds, quoted_cancel, settle_refunds

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
    quoted_cancel(patient, visit.id, [visit.items[0].id])
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


def test_a_refund_sent_to_the_wallet_names_its_visit_on_the_wallet_page(
    world, users, gateway, client
):
    """The wallet's "Refund sent to your wallet" line names and links its visit, as the
    other lines about a visit do (review H); another patient's refund names nothing."""
    from portal.refunds.queries import visits_named_by_refunds
    from tests.refunds.helpers import login, with_known_passwords

    gateway.sandbox.set_faults(refund_outcome="failed")
    patient, visit, _first = cancelled(world, users, gateway)
    for _ in range(3):
        settle_refunds(gateway)
    last = refunds_lookup.refunds_for_visit(visit.id)[-1]
    refunds_failed.refund_to_wallet(users(world.admin), last.id, "Bank account closed")
    assert visits_named_by_refunds(patient.id, [("refund", str(last.id))]) == {
        ("refund", str(last.id)): (visit.id, visit.number)
    }
    assert visits_named_by_refunds(world.patients[1], [("refund", str(last.id))]) == {}
    with_known_passwords()
    email, number, visit_id = patient.email, visit.number, visit.id
    db.session.commit()
    login(client, email)
    page = client.get("/me/wallet").get_data(as_text=True)
    line = next(r for r in page.split("<tr>") if "Refund sent to your wallet" in r)
    assert f"Visit {number}" in line and f'href="/me/visits/{visit_id}"' in line


def test_duplicate_and_out_of_order_webhooks_change_nothing_twice(world, users, gateway):
    gateway.sandbox.set_faults(duplicate_webhooks=True, out_of_order=True)
    _, visit, refund = cancelled(world, users, gateway)
    settle_refunds(gateway)
    settle_refunds(gateway)
    assert db.session.get(Refund, refund.id).status == "PROCESSED"
    assert len(ledger_kinds("refund_processed")) == 1


def _given_up_without_an_answer(world, users, gateway, faults):
    """A refund whose three create attempts all went unanswered: FAILED, no Razorpay id."""
    gateway.sandbox.set_faults(**faults, match="refund")
    patient, visit, refund = cancelled(world, users, gateway)
    poll_refunds(now=later())
    poll_refunds(now=later(120))
    db.session.expire_all()
    refund = db.session.get(Refund, refund.id)
    assert (refund.status, refund.attempts, refund.razorpay_refund_id) == ("FAILED", 3, None)
    gateway.sandbox.reset_faults()
    return patient, refund


def _paid_once(gateway, patient, refund):
    """The refund reached the patient exactly once: through Razorpay, none in the wallet."""
    settle_refunds(gateway)
    processed = [r for r in gateway.sandbox.store.refunds.values() if r["status"] == "processed"]
    assert [r["amount"] for r in processed] == [refund.amount]
    assert db.session.get(Refund, refund.id).status == "PROCESSED"
    assert balance(chart.patient_wallet(patient.id)) == 0
    assert len(ledger_kinds("refund_processed")) == 1 and balance(chart.REFUNDS_PAYABLE) == 0


def test_send_to_wallet_finds_a_refund_razorpay_made_without_answering(world, users, fast_gateway):
    """Every answer lost, yet Razorpay made the refund (the same key each time): the wallet
    is refused, the row is pending again with Razorpay's id, and Razorpay pays it once."""
    patient, refund = _given_up_without_an_answer(
        world, users, fast_gateway, {"timeout_next": 3, "timeout_seconds": 1.0}
    )
    assert len(fast_gateway.sandbox.store.refunds) == 1
    admin = users(world.admin)
    with pytest.raises(CancellationError) as refused:
        refunds_failed.refund_to_wallet(admin, refund.id, "Gateway keeps failing")
    assert refused.value.message == MSG_AT_GATEWAY
    db.session.expire_all()
    refund = db.session.get(Refund, refund.id)
    assert refund.status == "PENDING" and refund.razorpay_refund_id
    assert [r.destination for r in refunds_lookup.refunds_for_visit(refund.visit_id)] == ["GATEWAY"]
    _paid_once(fast_gateway, patient, refund)


def test_a_late_refund_created_makes_a_given_up_refund_pending_not_retryable(
    world, users, fast_gateway
):
    """Razorpay's refund.created for a refund we gave up on: pending again, so an admin's
    retry (a new key once the row knows Razorpay's id) is refused."""
    patient, refund = _given_up_without_an_answer(
        world, users, fast_gateway, {"timeout_next": 3, "timeout_seconds": 1.0}
    )
    fast_gateway.deliver()  # refund.created
    db.session.expire_all()
    refund = db.session.get(Refund, refund.id)
    assert refund.status == "PENDING" and refund.razorpay_refund_id
    assert refund.failure_reason is None and not refund.alerted
    with pytest.raises(CancellationError):
        refunds_failed.retry_refund(users(world.admin), refund.id)
    _paid_once(fast_gateway, patient, refund)


def test_send_to_wallet_waits_until_razorpay_can_be_asked(world, users, fast_gateway):
    """Razorpay never reached, and then not reachable to ask: nothing moves; once it
    answers that it has no such refund, the wallet gets it."""
    patient, refund = _given_up_without_an_answer(
        world, users, fast_gateway, {"fail_next": 3, "error_status": 503}
    )
    fast_gateway.sandbox.set_faults(fail_next=1, error_status=503, match="refunds")
    admin = users(world.admin)
    with pytest.raises(CancellationError) as refused:
        refunds_failed.refund_to_wallet(admin, refund.id, "Gateway keeps failing")
    assert refused.value.message == MSG_GATEWAY_UNKNOWN
    db.session.expire_all()
    assert db.session.get(Refund, refund.id).status == "FAILED"
    assert balance(chart.patient_wallet(patient.id)) == 0
    wallet = refunds_failed.refund_to_wallet(admin, refund.id, "Gateway keeps failing")
    assert (wallet.destination, wallet.status) == ("WALLET", "PROCESSED")
    assert balance(chart.patient_wallet(patient.id)) == refund.amount
    assert not fast_gateway.sandbox.store.refunds


def _refund_failed_alerts(world):
    db.session.expire_all()
    return db.session.scalars(
        sa.select(Notification)
        .where(Notification.kind == "alert.REFUND_FAILED", Notification.user_id == world.admin)
        .order_by(Notification.id)
    ).all()


def test_a_refund_found_at_razorpay_that_then_fails_alerts_the_admins_again(
    app, world, users, fast_gateway
):
    """A one-refund chain (REFUND_MAX_ATTEMPTS 1) goes unanswered: FAILED, alerted. Its
    refund.created shows Razorpay has it (PENDING again); then Razorpay fails it: it needs
    a person again, and the admins are told again, with the new reason."""
    app.config["REFUND_MAX_ATTEMPTS"] = 1
    try:
        fast_gateway.sandbox.set_faults(timeout_next=1, timeout_seconds=1.0, match="refund")
        _, visit, refund = cancelled(world, users, fast_gateway)
        assert (refund.status, refund.razorpay_refund_id) == ("FAILED", None)
        assert len(_refund_failed_alerts(world)) == 1
        fast_gateway.sandbox.reset_faults()
        fast_gateway.deliver()  # refund.created: Razorpay has it after all
        db.session.expire_all()
        refund = db.session.get(Refund, refund.id)
        assert refund.status == "PENDING" and not refund.alerted
        fast_gateway.sandbox.store.force_outcome(refund.razorpay_refund_id, "failed")
        settle_refunds(fast_gateway)  # refund.failed
        refund = db.session.get(Refund, refund.id)
        assert refund.status == "FAILED" and not refund.superseded
    finally:
        app.config.pop("REFUND_MAX_ATTEMPTS", None)
    first, second = _refund_failed_alerts(world)
    assert "No answer" in first.body or "answer" in first.body.lower()
    assert "Razorpay reported the refund as failed" in second.body


def test_an_admins_retry_that_fails_again_alerts_the_admins_again(world, users, fast_gateway):
    """The admin retries a refund that never reached Razorpay (same row, same key); every
    attempt fails again: a second alert, not silence."""
    fast_gateway.sandbox.set_faults(fail_next=3, error_status=503, match="refund")
    _, visit, refund = cancelled(world, users, fast_gateway)
    poll_refunds(now=later())
    poll_refunds(now=later(120))
    assert len(_refund_failed_alerts(world)) == 1
    fast_gateway.sandbox.set_faults(fail_next=3, error_status=503, match="refund")
    assert refunds_failed.retry_refund(users(world.admin), refund.id).id == refund.id
    poll_refunds(now=later(180))
    poll_refunds(now=later(300))
    db.session.expire_all()
    assert db.session.get(Refund, refund.id).status == "FAILED"
    assert len(_refund_failed_alerts(world)) == 2
