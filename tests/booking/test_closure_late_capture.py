"""A checkout in flight at the gateway when the account is closed (docs/privacy.md): the
late capture confirms nothing, never reaches the closed wallet, is refunded in full to its
source through the gateway refund path, and nobody mails the closed placeholder."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.accounts.passwords import hash_password
from portal.booking import checkout, lookup, prices, visits
from portal.booking.tasks import expire_holds
from portal.extensions import db
from portal.gateway.models import WebhookEvent
from portal.payouts import completion
from portal.privacy import closure
from portal.refunds.models import Refund
from tests.booking.factories import at, quoted_checkout
from tests.plugin import PASSWORD
from tests.refunds.helpers import move_paid_at_gateway

CALLBACK = "http://portal.test/visits/callback"


def _patient(users, world):
    patient = users(world.patients[0])
    patient.password_hash = hash_password(PASSWORD)
    db.session.commit()
    return patient


def test_a_late_capture_after_closing_revives_nothing_and_is_refunded(world, users, gateway, clock):
    """Order created, hold expired (nothing owed: closing allowed), account closed, then
    the patient pays in the still-open Razorpay tab (review: the late capture revived the
    visit as CONFIRMED for an account that no longer names anyone and cannot sign in)."""
    patient = _patient(users, world)
    visit_id = visits.add_item(
        patient, patient_id=patient.id, service_id=world.consult,
        provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=at(1, 10),
    ).master_id  # fmt: skip
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    clock.shift(timedelta(minutes=31))
    assert expire_holds() == 1
    closure.close_account(patient.id, PASSWORD, True)
    assert db.session.get(User, patient.id).closed_at is not None
    gateway.pay(result.payment.razorpay_order_id)
    gateway.deliver()
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    # A closed account must hold no live booking; the money must be sent back, not
    # confirm a visit nobody can be told about.
    assert visit.status != "CONFIRMED", (visit.status, [i.status for i in visit.items])
    _refunded_to_source(patient.id, result.payment.amount, gateway)


def test_the_return_of_a_capture_refunded_for_a_closed_account_says_so(
    world, users, gateway, clock
):
    """The same late capture, its checkout return arriving: the return's answer says the
    money is being refunded to its source (``paid.Outcome.REFUNDED``), never that the
    visit is being confirmed, nor that it is in a wallet nobody can use (review r4)."""
    from portal.booking.paid import MESSAGES, Outcome

    patient = _patient(users, world)
    visit_id = visits.add_item(
        patient, patient_id=patient.id, service_id=world.consult,
        provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=at(1, 10),
    ).master_id  # fmt: skip
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    clock.shift(timedelta(minutes=31))
    assert expire_holds() == 1
    closure.close_account(patient.id, PASSWORD, True)
    params = gateway.pay(result.payment.razorpay_order_id)
    paid = checkout.complete_checkout_callback(params, visit_id)
    assert paid.outcome == Outcome.REFUNDED and paid.elsewhere
    assert "refunded" in MESSAGES[Outcome.REFUNDED] and "wallet" not in paid.message
    assert checkout.complete_checkout_callback(params, visit_id).outcome == Outcome.REFUNDED
    _refunded_to_source(patient.id, result.payment.amount, gateway)


def _refunded_to_source(patient_id, amount, gateway):
    """One gateway refund of all of ``amount`` to the capture, processed at Razorpay; the
    closed wallet untouched; an admin alerted; the patient sent nothing."""
    import sqlalchemy as sa

    from portal.audit.models import AuditEntry
    from portal.notify.models import MailMessage, Notification
    from portal.refunds.models import GATEWAY, Refund

    gateway.sandbox.advance(24 * 3600)  # Razorpay processes the refund
    gateway.deliver()  # refund.processed
    db.session.expire_all()
    refunds = db.session.scalars(sa.select(Refund).where(Refund.patient_id == patient_id)).all()
    assert [(r.destination, r.amount, r.status) for r in refunds] == [
        (GATEWAY, amount, "PROCESSED")
    ]
    assert refunds[0].razorpay_payment_id and refunds[0].razorpay_refund_id
    assert prices.wallet_balance(patient_id) == 0
    assert (
        db.session.scalars(
            sa.select(MailMessage.subject).where(MailMessage.to.like("closed-%"))
        ).all()
        == []
    )
    alerts = db.session.scalars(
        sa.select(Notification.title).where(Notification.title.like("%account was closed%"))
    ).all()
    assert alerts, "no admin alert"
    assert db.session.scalar(
        sa.select(AuditEntry.id).where(AuditEntry.action == "payment.refunded_closed_account")
    )


def test_a_late_capture_that_read_the_account_open_as_the_close_committed_is_refunded(
    world, users, gateway, clock, monkeypatch
):
    """The capture read the account as open just before the closure committed (a race
    of two requests; the first read is made to answer "open"): making the expired
    booking's claims live again is refused (PostgreSQL: the claims' trigger, reading the
    account row FOR KEY SHARE, which the closure takes FOR UPDATE; SQLite: read under the
    claims' process lock, which the closure holds to its commit), and the capture is
    refunded as any capture for a closed account (review: it revived the visit as
    CONFIRMED on a closed account)."""
    patient = _patient(users, world)
    visit_id = visits.add_item(
        patient, patient_id=patient.id, service_id=world.consult,
        provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=at(1, 10),
    ).master_id  # fmt: skip
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    clock.shift(timedelta(minutes=31))
    assert expire_holds() == 1
    closure.close_account(patient.id, PASSWORD, True)
    reads = []

    def is_closed(user):  # the capture's read, made before the closure committed
        reads.append(user.id)
        return user.closed_at is not None and len(reads) > 1

    monkeypatch.setattr(User, "is_closed", property(is_closed))
    gateway.pay(result.payment.razorpay_order_id)
    gateway.deliver()
    db.session.expire_all()
    # Read once: refunded in the capture's own pass, not after a failed job and its retry.
    assert reads == [patient.id], reads
    visit = lookup.get_visit(visit_id)
    assert visit.status != "CONFIRMED", (visit.status, [i.status for i in visit.items])
    assert [i.status for i in visit.items] == ["EXPIRED"]
    _refunded_to_source(patient.id, result.payment.amount, gateway)


def test_a_late_capture_after_closing_never_reaches_the_closed_wallet(world, users, gateway, clock):
    """Same, the slot taken meanwhile (review: the capture went to the closed account's
    wallet, where no one can spend it and nothing pays it back)."""
    patient = _patient(users, world)
    other = users(world.patients[1])
    visit_id = visits.add_item(
        patient, patient_id=patient.id, service_id=world.consult,
        provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=at(1, 10),
    ).master_id  # fmt: skip
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    clock.shift(timedelta(minutes=31))
    assert expire_holds() == 1
    closure.close_account(patient.id, PASSWORD, True)
    visits.add_item(
        other, patient_id=other.id, service_id=world.consult,
        provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=at(1, 10),
    )  # fmt: skip
    gateway.pay(result.payment.razorpay_order_id)
    gateway.deliver()
    db.session.expire_all()
    assert prices.wallet_balance(patient.id) == 0, prices.wallet_balance(patient.id)
    _refunded_to_source(patient.id, result.payment.amount, gateway)
    # Delivered again (Razorpay repeats webhooks): nothing more is refunded or posted.
    gateway.sandbox.deliver_pending(force=True)
    from portal.refunds.models import Refund

    assert db.session.scalar(sa_count(Refund)) == 1


def sa_count(model):
    import sqlalchemy as sa

    return sa.select(sa.func.count()).select_from(model)


def test_a_reschedule_fee_captured_for_a_closed_account_is_refunded(world, users, gateway, clock):
    """A move's fee paid at the gateway, its webhook arriving once the account is closed
    (closed here with the one erasure step, the booking live: this is about the capture,
    not the closure's refusals): the booking stays, the fee is refunded to its source."""
    from portal.accounts import service as accounts
    from portal.booking.models import IndividualBooking
    from portal.db import unit_of_work

    paid = move_paid_at_gateway(world, gateway, clock)
    start = db.session.get(IndividualBooking, paid.item_id).start_at
    with unit_of_work():
        accounts.close_own_account(db.session.get(User, paid.patient_id))
    gateway.deliver()
    db.session.expire_all()
    assert db.session.get(IndividualBooking, paid.item_id).start_at == start
    _refunded_to_source(paid.patient_id, paid.fee, gateway)


def test_closing_erases_email_and_phone_from_the_stored_webhooks(world, users, gateway):
    """An admin's payment link carries the patient as the link's customer (name, e-mail,
    mobile); Razorpay's webhooks echo them, and ``webhook_event.payload`` keeps the raw
    JSON (review: for ever). The closure takes them out (``gateway.scrub``)."""
    import json

    from portal.booking import links
    from tests.booking.factories import at as when

    patient = _patient(users, world)
    patient.phone = "+919812345678"
    db.session.commit()
    email = patient.email
    admin = users(world.admin)
    start = when(2, 10)
    item = visits.add_item(
        admin, patient_id=patient.id, service_id=world.consult,
        provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=start,
    )  # fmt: skip
    payment = links.create_payment_link(admin, item.master_id)
    gateway.pay_link(payment.link_url)
    gateway.deliver()
    db.session.expire_all()
    completion.start_booking(users(world.admin), item.id, now=start)
    completion.complete_booking(users(world.admin), item.id, now=start)
    closure.close_account(patient.id, PASSWORD, True)
    db.session.expire_all()
    assert db.session.get(User, patient.id).closed_at is not None
    payloads = json.dumps([e.payload for e in db.session.scalars(sa.select(WebhookEvent))])
    assert email not in payloads and "9812345678" not in payloads


@pytest.mark.parametrize("method", ["card", "upi"])
def test_closing_erases_the_payers_nested_details_from_the_stored_webhooks(
    world, users, gateway, method
):
    """Review rv_privacy: a card payment's entity carries ``card.name``, the cardholder's
    name, and a UPI payment's newer ``upi.vpa`` the payer's UPI id (Razorpay's payment
    entity; the sandbox's too). ``scrub`` deleted ``email``/``contact``/``vpa``/``customer``
    only at the top of each entity, so they stayed in ``webhook_event.payload`` for good
    after the account was closed. What is not the person stays (the card's last four
    digits and network, the UPI account type)."""
    patient = _patient(users, world)
    start = at(2, 10)
    item = visits.add_item(
        patient, patient_id=patient.id, service_id=world.consult,
        provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=start,
    )  # fmt: skip
    item_id = item.id
    result = quoted_checkout(patient, item.master_id, 0, callback_url=CALLBACK)
    checkout.complete_checkout_callback(
        gateway.pay(result.payment.razorpay_order_id, method=method)
    )
    gateway.deliver()
    db.session.expire_all()
    completion.start_booking(users(world.admin), item_id, now=start)
    completion.complete_booking(users(world.admin), item_id, now=start)
    closure.close_account(patient.id, PASSWORD, True)
    db.session.expire_all()
    assert db.session.get(User, patient.id).closed_at is not None
    details = []
    for event in db.session.scalars(sa.select(WebhookEvent)):
        entity = ((event.payload or {}).get("payload", {}).get("payment") or {}).get("entity")
        if entity and entity.get(method):
            details.append(entity[method])
    assert details, f"no {method} payment event stored"
    if method == "card":
        assert [c for c in details if "name" in c] == []
        assert {(c["last4"], c["network"]) for c in details} == {("1111", "Visa")}
    else:
        assert [u for u in details if "vpa" in u] == []
        assert {u["payer_account_type"] for u in details} == {"bank_account"}


def test_no_late_payment_mail_goes_to_the_closed_placeholder(world, users, gateway, clock):
    """The late capture's "money is in your wallet" mail (``notify.payment_attention``,
    which calls ``queue_mail`` without the ``active`` check ``notify_user`` makes) is
    queued to closed-<id>@closed.invalid, "Hello Closed account #<id>": an account closed
    is to be sent nothing (docs/notifications.md). Review: it was."""
    import sqlalchemy as sa

    from portal.notify.models import MailMessage

    patient = _patient(users, world)
    other = users(world.patients[1])
    visit_id = visits.add_item(
        patient, patient_id=patient.id, service_id=world.consult,
        provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=at(1, 10),
    ).master_id  # fmt: skip
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    clock.shift(timedelta(minutes=31))
    assert expire_holds() == 1
    closure.close_account(patient.id, PASSWORD, True)
    visits.add_item(
        other, patient_id=other.id, service_id=world.consult,
        provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=at(1, 10),
    )  # fmt: skip
    gateway.pay(result.payment.razorpay_order_id)
    gateway.deliver()
    db.session.expire_all()
    to_closed = db.session.scalars(
        sa.select(MailMessage.subject).where(MailMessage.to.like("closed-%"))
    ).all()
    assert to_closed == []
    # The capture was handled (refunded), not merely never processed.
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Refund).where(Refund.patient_id == patient.id)
        )
        == 1
    )
