"""The life of the refund of a capture made after the account was closed
(docs/privacy.md "Payments still in flight")."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.accounts.passwords import hash_password
from portal.booking import checkout, prices, visits
from portal.booking.tasks import expire_holds
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.privacy import closure
from portal.refunds import failed as refunds_failed
from portal.refunds.common import CancellationError
from portal.refunds.models import Refund
from tests.booking.factories import at, quoted_checkout
from tests.plugin import PASSWORD
from tests.refunds.helpers import ledger_kinds, settle_refunds

CALLBACK = "http://portal.test/visits/callback"


def closed_and_paid(world, users, gateway, clock):
    patient = users(world.patients[0])
    patient.password_hash = hash_password(PASSWORD)
    db.session.commit()
    visit_id = visits.add_item(
        patient, patient_id=patient.id, service_id=world.consult,
        provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=at(1, 10),
    ).master_id  # fmt: skip
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    clock.shift(timedelta(minutes=31))
    assert expire_holds() == 1
    closure.close_account(patient.id, PASSWORD, True)
    gateway.pay(result.payment.razorpay_order_id)
    gateway.deliver()
    db.session.expire_all()
    return patient.id, visit_id, result


def test_processed_refund_balances_the_ledger(world, users, gateway, clock):
    patient_id, visit_id, result = closed_and_paid(world, users, gateway, clock)
    settle_refunds(gateway, 24 * 3600)
    assert len(ledger_kinds("closed_account_capture")) == 1
    assert len(ledger_kinds("refund_processed")) == 1
    assert balance(chart.REFUNDS_PAYABLE) == 0
    assert balance(chart.patient_wallet(patient_id)) == 0


def test_a_failed_refund_of_a_closed_account_is_not_sent_to_its_wallet(
    world, users, gateway, clock
):
    """Razorpay fails the refund every time: the admin is alerted and offered "Send the
    refund to the wallet" (refunds.failed.refund_to_wallet). For a closed account that
    wallet can be neither spent nor paid out (docs/privacy.md: "not put in the wallet";
    a credit adjustment to a closed account is refused): it must be refused here too."""
    gateway.sandbox.set_faults(refund_outcome="failed")
    patient_id, visit_id, result = closed_and_paid(world, users, gateway, clock)
    for _ in range(3):
        settle_refunds(gateway)
    rows = db.session.scalars(
        sa.select(Refund).where(Refund.patient_id == patient_id).order_by(Refund.id)
    ).all()
    assert [r.status for r in rows] == ["FAILED"] * 3 and not rows[-1].superseded
    admin = users(world.admin)
    with pytest.raises(CancellationError, match="closed their account"):
        refunds_failed.refund_to_wallet(admin, rows[-1].id, "gateway keeps failing")
    db.session.expire_all()
    assert prices.wallet_balance(patient_id) == 0, (
        f"closed account's wallet credited {prices.wallet_balance(patient_id)} paise"
    )


def test_reconciliation_console_and_dashboard_agree_on_the_capture_and_its_refund(
    world, users, gateway, clock
):
    from portal.dashboard.queries import dashboard
    from portal.db import utcnow
    from portal.domain.timezone import CLINIC_TZ
    from portal.transactions.filters import MovementFilter
    from portal.transactions.queries import summary
    from tests.reconcile.helpers import cases, later, run_day

    patient_id, visit_id, result = closed_and_paid(world, users, gateway, clock)
    settle_refunds(gateway, 24 * 3600)
    [refund] = db.session.scalars(sa.select(Refund).where(Refund.patient_id == patient_id)).all()
    day = utcnow().astimezone(CLINIC_TZ).date()
    s = summary(MovementFilter(start=day, end=day))
    board = dashboard().series
    amount = result.payment.amount
    assert (s.money_in, s.refunds) == (amount, amount), (s.money_in, s.refunds)
    assert board["money in"].window(1)[1] == amount
    later(clock)
    run_day(world, day)
    bad = [(c.kind, c.reference, c.status, c.reason) for c in cases() if c.status != "matched"]
    assert not bad, bad
    assert refund.status == "PROCESSED"


def test_callback_then_webhooks_refund_once_and_post_once(world, users, gateway, clock):
    """The signed checkout return first, then payment.captured and order.paid (and again):
    one refund, one closed_account_capture posting, one refund_processed."""
    patient = users(world.patients[0])
    patient.password_hash = hash_password(PASSWORD)
    db.session.commit()
    visit_id = visits.add_item(
        patient, patient_id=patient.id, service_id=world.consult,
        provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=at(1, 10),
    ).master_id  # fmt: skip
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    clock.shift(timedelta(minutes=31))
    assert expire_holds() == 1
    closure.close_account(patient.id, PASSWORD, True)
    params = gateway.pay(result.payment.razorpay_order_id)
    checkout.complete_checkout_callback(params, visit_id)
    checkout.complete_checkout_callback(params, visit_id)
    gateway.deliver()
    gateway.sandbox.deliver_pending(force=True)
    settle_refunds(gateway, 24 * 3600)
    gateway.sandbox.deliver_pending(force=True)
    db.session.expire_all()
    rows = db.session.scalars(sa.select(Refund).where(Refund.patient_id == patient.id)).all()
    assert [(r.status, r.amount) for r in rows] == [("PROCESSED", result.payment.amount)]
    assert len(ledger_kinds("closed_account_capture")) == 1
    assert len(ledger_kinds("refund_processed")) == 1
    assert len(gateway.sandbox.store.refunds) == 1
    assert balance(chart.REFUNDS_PAYABLE) == 0


def test_visit_money_after_an_admin_sends_the_failed_refund_to_the_wallet(
    world, users, gateway, clock
):
    """Knock-on of the wallet fallback: its replacement row carries no payment_id
    (common.replacement), so visit_money counts it as a refund of the visit's own
    payments, of a visit that was never paid."""
    from portal.booking import lookup
    from portal.refunds.queries import visit_money

    gateway.sandbox.set_faults(refund_outcome="failed")
    patient_id, visit_id, result = closed_and_paid(world, users, gateway, clock)
    for _ in range(3):
        settle_refunds(gateway)
    rows = db.session.scalars(
        sa.select(Refund).where(Refund.patient_id == patient_id).order_by(Refund.id)
    ).all()
    with pytest.raises(CancellationError, match="closed their account"):
        refunds_failed.refund_to_wallet(users(world.admin), rows[-1].id, "x")
    db.session.expire_all()
    money = visit_money(lookup.get_visit(visit_id))
    assert (money.paid, money.refunded) == (0, 0), money


def test_admin_retry_of_a_failed_closed_refund_pays_once(world, users, gateway, clock):
    from portal.booking import lookup
    from portal.refunds.queries import visit_money

    gateway.sandbox.set_faults(refund_outcome="failed")
    patient_id, visit_id, result = closed_and_paid(world, users, gateway, clock)
    for _ in range(3):
        settle_refunds(gateway)
    rows = db.session.scalars(
        sa.select(Refund).where(Refund.patient_id == patient_id).order_by(Refund.id)
    ).all()
    gateway.sandbox.set_faults(refund_outcome=None)
    new = refunds_failed.retry_refund(users(world.admin), rows[-1].id)
    from portal import jobs  # noqa: F401

    settle_refunds(gateway, 24 * 3600)
    db.session.expire_all()
    new = db.session.get(Refund, new.id)
    assert (new.status, new.payment_id) == ("PROCESSED", rows[0].payment_id)
    assert len(ledger_kinds("refund_processed")) == 1
    assert balance(chart.REFUNDS_PAYABLE) == 0
    assert prices.wallet_balance(patient_id) == 0
    money = visit_money(lookup.get_visit(visit_id))
    assert (money.paid, money.refunded, money.refund_pending) == (0, 0, 0)
    # The failed attempts, replaced and paid, are nothing in flight: counted so, a refund
    # that ever failed refused a closure for ever (the docs' re-read).
    from portal.refunds.queries import refunds_in_flight

    assert refunds_in_flight(patient_id) == 0


def test_the_refunds_page_offers_no_wallet_for_a_closed_account(
    world, users, gateway, clock, client, login
):
    gateway.sandbox.set_faults(refund_outcome="failed")
    patient_id, visit_id, result = closed_and_paid(world, users, gateway, clock)
    for _ in range(3):
        settle_refunds(gateway)
    failed = db.session.scalars(
        sa.select(Refund).where(Refund.patient_id == patient_id, Refund.superseded.is_(False))
    ).one()
    assert failed.status == "FAILED"
    admin = users(world.admin)
    admin.password_hash = hash_password(PASSWORD)
    db.session.commit()
    login(admin)
    html = client.get("/admin/refunds").get_data(as_text=True)
    row = html.split(f'id="refund-{failed.id}"')[1].split("</tr>")[0]
    assert "Retry…" in row and "Send to wallet" not in row and "Account closed" in row
    # Nor does its confirmation page ask to put the amount in the wallet: refused by the
    # same rule (refunds.failed.actions) before anything is asked.
    asked = client.get(f"/admin/refunds/{failed.id}/to-wallet", follow_redirects=True)
    assert "Yes, put" not in asked.get_data(as_text=True)
    assert "closed their account" in asked.get_data(as_text=True)
    # Posted as its confirmation page would (the amount confirmed): refused by the rule.
    answer = client.post(
        f"/admin/refunds/{failed.id}/to-wallet",
        data={"confirmed_amount": str(failed.amount), "note": "x"},
        follow_redirects=True,
    )
    assert "closed their account" in answer.get_data(as_text=True)
    db.session.expire_all()
    assert prices.wallet_balance(patient_id) == 0
