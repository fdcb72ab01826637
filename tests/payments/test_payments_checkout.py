"""Checkout through the real SDK and sandbox: callback and webhooks in any order, any
number of times; failures, retries, late and wrong payments."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.booking import checkout, lookup, prices, visits
from portal.booking.errors import BookingError, PaymentError
from portal.booking.postings import WALLET_RESERVED
from portal.booking.tasks import expire_holds
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerTransaction
from portal.ledger.service import balance
from portal.notify.models import MailMessage
from portal.outbox import OutboxItem
from portal.payments.models import Payment, PaymentAttempt
from tests.booking.factories import at, captured_event, credit_wallet, post_webhook, quoted_checkout

CALLBACK = "http://portal.test/visits/callback"


def hold(world, patient, hour=10, doctor=0, day=1, **options):
    return visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[doctor]],
        clinic_id=world.clinic,
        start_at=at(day, hour),
        **options,
    ).master_id


def confirmations(visit_id):
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(LedgerTransaction)
        .where(
            LedgerTransaction.kind == "visit_confirmed",
            LedgerTransaction.reference_id == str(visit_id),
        )
    )


def fresh(visit_id):
    db.session.expire_all()
    return lookup.get_visit(visit_id)


def test_webhooks_three_times_before_and_after_the_callback_confirm_once(
    app, world, users, gateway
):
    patient = users(world.patients[0])
    credit_wallet(patient.id, 10_000)
    visit_id = hold(world, patient)
    result = quoted_checkout(patient, visit_id, 10_000, CALLBACK)
    assert fresh(visit_id).status == "PENDING_PAYMENT"
    params = gateway.pay(result.payment.razorpay_order_id)
    events = gateway.sandbox.events()
    assert [e["event"] for e in events] == ["payment.authorized", "payment.captured", "order.paid"]
    captured = next(e for e in events if e["event"] == "payment.captured")
    payload = {k: v for k, v in captured.items() if k not in ("id", "source")}

    gateway.sandbox.set_faults(duplicate_webhooks=True)
    gateway.deliver()  # each event twice, same event id
    for n in range(3):  # and the capture again under new event ids
        post_webhook(app, payload, f"evt_before_{n}")
    assert fresh(visit_id).status == "CONFIRMED"

    visit = checkout.complete_checkout_callback(params).visit
    assert visit.status == "CONFIRMED"
    checkout.complete_checkout_callback(params)
    for n in range(3):
        post_webhook(app, payload, f"evt_after_{n}")
        post_webhook(app, payload, "evt_before_0")

    visit = fresh(visit_id)
    assert visit.status == "CONFIRMED" and [i.status for i in visit.items] == ["CONFIRMED"]
    assert confirmations(visit_id) == 1
    assert {p.kind: p.status for p in visit.payments} == {
        "ORDER": "SUCCESSFUL",
        "WALLET": "SUCCESSFUL",
    }
    order = next(p for p in visit.payments if p.kind == "ORDER")
    assert order.razorpay_payment_id == params["razorpay_payment_id"] and order.method == "upi"
    events = [a.event for a in order.attempts]
    assert events.count("authorized") == 1
    assert sum(e.endswith("captured") for e in events) == 1
    assert balance(chart.GATEWAY_CLEARING) == 52_950 - 10_000
    assert balance(WALLET_RESERVED) == 0 and prices.wallet_balance(patient.id) == 0
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxItem)
            .where(OutboxItem.job == "notify.booking_confirmed")
        )
        == 1
    )
    [mail] = db.session.scalars(sa.select(MailMessage).where(MailMessage.to == patient.email))
    assert f"Visit {visit.number} confirmed" == mail.subject and visit.invoice_no in mail.text
    from portal.notify.models import Reminder

    assert db.session.scalar(sa.select(sa.func.count()).select_from(Reminder)) >= 1


def test_webhook_alone_confirms_and_the_callback_changes_nothing(world, users, gateway):
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    params = gateway.pay(result.payment.razorpay_order_id)
    gateway.deliver()
    assert fresh(visit_id).status == "CONFIRMED"
    assert checkout.complete_checkout_callback(params).visit.status == "CONFIRMED"
    assert confirmations(visit_id) == 1


def test_repeat_captures_of_a_confirmed_payment_do_not_ask_the_gateway(
    app, world, users, gateway, monkeypatch
):
    """After the signed return confirmed the payment with the gateway, the capture events
    that follow (payment.captured, order.paid) change nothing, so they are not fetched
    again: most of the worker's webhook jobs are such repeats."""
    from portal.gateway.payin import RazorpayPayIn

    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    params = gateway.pay(result.payment.razorpay_order_id)
    assert checkout.complete_checkout_callback(params).visit.status == "CONFIRMED"
    fetched = []
    real = RazorpayPayIn.fetch_payment
    monkeypatch.setattr(
        RazorpayPayIn, "fetch_payment", lambda self, pid: fetched.append(pid) or real(self, pid)
    )
    gateway.deliver()  # authorized, captured, order.paid
    assert fetched == []
    assert fresh(visit_id).status == "CONFIRMED" and confirmations(visit_id) == 1


def _written():
    """How many rows a capture would add: payment attempts, ledger transactions, audit
    entries, outbox items; and every payment's status."""
    db.session.expire_all()
    counts = [
        db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (PaymentAttempt, LedgerTransaction, AuditEntry, OutboxItem)
    ]
    return counts, sorted(db.session.execute(sa.select(Payment.id, Payment.status)).all())


def test_bad_signature_is_refused(world, users, gateway):
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    params = gateway.pay(result.payment.razorpay_order_id)
    before = _written()
    with pytest.raises(PaymentError, match="could not verify"):
        checkout.complete_checkout_callback({**params, "razorpay_signature": "0" * 64})
    assert fresh(visit_id).status == "PENDING_PAYMENT"
    # The return may be anonymous (issue #15, finding 6): a refused one writes nothing.
    assert _written() == before
    with pytest.raises(PaymentError):
        checkout.complete_checkout_callback({"error[description]": "declined"})


def test_failures_need_intervention_after_three_and_stop_at_five(world, users, gateway):
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    order_id = result.payment.razorpay_order_id
    for _ in range(1, 5):
        gateway.pay(order_id, outcome="failure")
        gateway.deliver()
        visit = fresh(visit_id)
        assert visit.attention == "PAYMENT_FAILED"  # from the first failure
        assert visit.status == "PENDING_PAYMENT"
        again = quoted_checkout(patient, visit_id, callback_url=CALLBACK)  # a retry
        assert again.payment.id == result.payment.id
    assert lookup.list_visits(needs_attention=True).total == 1
    gateway.pay(order_id, outcome="failure")
    gateway.deliver()
    visit = fresh(visit_id)
    assert db.session.get(Payment, result.payment.id).status == "FAILED"
    assert visit.status == "EXPIRED"  # the hold is released after the fifth attempt
    with pytest.raises(BookingError):
        quoted_checkout(patient, visit_id, callback_url=CALLBACK)


def test_late_payment_revives_the_visit_when_the_slot_is_free(world, users, gateway, clock):
    patient = users(world.patients[0])
    credit_wallet(patient.id, 5_000)
    visit_id = hold(world, patient)
    result = quoted_checkout(patient, visit_id, 5_000, CALLBACK)
    clock.shift(timedelta(minutes=31))
    assert expire_holds() == 1
    assert fresh(visit_id).status == "EXPIRED" and prices.wallet_balance(patient.id) == 5_000
    params = gateway.pay(result.payment.razorpay_order_id)
    gateway.deliver()
    visit = fresh(visit_id)
    assert visit.status == "CONFIRMED" and visit.items[0].status == "CONFIRMED"
    assert all(c.live for c in visit.items[0].claims)
    late = [p for p in visit.payments if p.late_for_id]
    assert [(p.kind, p.status, p.amount) for p in late] == [("ORDER", "SUCCESSFUL", 47_950)]
    assert db.session.get(Payment, result.payment.id).status == "EXPIRED"
    assert prices.wallet_balance(patient.id) == 0 and balance(WALLET_RESERVED) == 0
    assert checkout.complete_checkout_callback(params).visit.status == "CONFIRMED"
    assert confirmations(visit_id) == 1


def test_late_payment_for_a_taken_slot_goes_to_the_wallet(world, users, gateway, clock):
    patient, other = users(world.patients[0]), users(world.patients[1])
    visit_id = hold(world, patient)
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    clock.shift(timedelta(minutes=31))
    hold(world, other)  # expires the stale hold itself and takes the slot
    gateway.pay(result.payment.razorpay_order_id)
    gateway.deliver()
    gateway.deliver()
    visit = fresh(visit_id)
    assert visit.status == "EXPIRED" and visit.attention == "LATE_PAYMENT_TO_WALLET"
    assert prices.wallet_balance(patient.id) == 52_950
    assert confirmations(visit_id) == 0
    assert lookup.list_visits(needs_attention=True).items == [visit]


@pytest.mark.parametrize("change", ["leave", "deactivated"])
def test_late_payment_for_a_provider_now_away_goes_to_the_wallet(
    world, users, gateway, clock, change
):
    """Leave and a deactivation are refused only over live bookings: an expired hold whose
    order is still open is not one, so the late capture must not revive it (a patient
    would come to an absent provider)."""
    from portal.catalog import availability
    from portal.catalog.providers import update_provider

    patient, admin = users(world.patients[0]), users(world.admin)
    visit_id = hold(world, patient)
    start = fresh(visit_id).items[0].start_at
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    clock.shift(timedelta(minutes=31))
    assert expire_holds() == 1
    if change == "leave":
        availability.add_leave(
            admin, world.doctors[0], start - timedelta(hours=1), start + timedelta(hours=2)
        )
    else:
        update_provider(admin, world.doctors[0], active=False, registration_no="KMC-4242")
    db.session.commit()
    gateway.pay(result.payment.razorpay_order_id)
    gateway.deliver()
    visit = fresh(visit_id)
    assert visit.status == "EXPIRED" and visit.attention == "LATE_PAYMENT_TO_WALLET"
    assert prices.wallet_balance(patient.id) == 52_950 and confirmations(visit_id) == 0
    assert not any(c.live for c in visit.items[0].claims)


def test_late_payment_revives_a_booking_whose_service_was_lengthened_since(
    world, users, gateway, clock
):
    """The booking keeps its own time: a consultation lengthened after the hold (30 → 45
    minutes) must not make a hold ending at closing time look as if it ran past it."""
    from portal.catalog.models import Service
    from portal.catalog.services import update_service
    from tests.booking.factories import at

    patient, admin = users(world.patients[0]), users(world.admin)
    visit_id = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[1]],
        clinic_id=world.clinic,
        start_at=at(1, 17, 30),  # to 18:00, when the clinic closes
    ).master_id
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    clock.shift(timedelta(minutes=31))
    assert expire_holds() == 1
    update_service(admin, db.session.get(Service, world.consult), duration_minutes=45)
    db.session.commit()
    gateway.pay(result.payment.razorpay_order_id)
    gateway.deliver()
    assert fresh(visit_id).status == "CONFIRMED" and confirmations(visit_id) == 1


def test_wrong_amount_confirms_nothing(app, world, users, gateway):
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    # The gateway itself holds a capture of another amount (a webhook's own claim no longer
    # counts: captures are confirmed against the gateway's record, issue #15).
    payment_id = gateway.pay(result.payment.razorpay_order_id)["razorpay_payment_id"]
    payload = captured_event(gateway, payment_id, 100)
    post_webhook(app, payload, "evt_wrong_1")
    post_webhook(app, payload, "evt_wrong_2")
    visit = fresh(visit_id)
    assert visit.status == "PENDING_PAYMENT" and visit.attention == "AMOUNT_MISMATCH"
    assert prices.wallet_balance(patient.id) == 100 and confirmations(visit_id) == 0


def test_changing_the_visit_abandons_the_pending_order(world, users, gateway):
    patient = users(world.patients[0])
    credit_wallet(patient.id, 2_000)
    visit_id = hold(world, patient)
    first = quoted_checkout(patient, visit_id, 2_000, CALLBACK)
    assert prices.wallet_balance(patient.id) == 0
    visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.follow,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 11),
        visit_id=visit_id,
    )
    visit = fresh(visit_id)
    assert visit.status == "DRAFT" and prices.wallet_balance(patient.id) == 2_000
    assert db.session.get(Payment, first.payment.id).status == "EXPIRED"
    second = quoted_checkout(patient, visit_id, 0, CALLBACK)
    assert second.payment.id != first.payment.id
    assert second.payment.amount == 52_950 + 26_529
    # The abandoned order gets paid anyway: the money is the patient's, in the wallet.
    gateway.pay(first.payment.razorpay_order_id)
    gateway.deliver()
    assert fresh(visit_id).attention == "LATE_PAYMENT_TO_WALLET"
    assert prices.wallet_balance(patient.id) == 2_000 + 50_950


def test_list_visits_filters(world, users, gateway):
    a, b = users(world.patients[0]), users(world.patients[1])
    v1 = hold(world, a)
    v2 = hold(world, b, hour=14, day=0)  # today, six hours ahead
    quoted_checkout(b, v2, callback_url=CALLBACK)
    assert lookup.list_visits().total == 2
    assert [v.id for v in lookup.list_visits(patient_id=a.id).items] == [v1]
    assert [v.id for v in lookup.list_visits(status="PENDING_PAYMENT").items] == [v2]
    assert [v.id for v in lookup.list_visits(search="patient 2").items] == [v2]
    assert [v.id for v in lookup.list_visits(search=f"V{v1:06d}").items] == [v1]
    # v2 awaits payment and starts within 24 h: it needs attention.
    assert [v.id for v in lookup.list_visits(needs_attention=True).items] == [v2]
    assert [v.id for v in lookup.list_visits(needs_attention=False).items] == [v1]


def test_the_gateways_callback_is_on_the_public_url_when_one_is_set(app, world, users):
    """Behind a load balancer the request's own address is the inside one: the callback
    told Razorpay to send the patient to http://10.0.0.5:8000/… (review finding). With a
    PUBLIC_URL set it is built on that; in the embedded demo with none, on the request's."""
    from portal.web.urls import external_url

    saved = {k: app.config[k] for k in ("PUBLIC_URL", "PUBLIC_URL_FOLLOWS_SERVER")}
    try:
        app.config.update(PUBLIC_URL="https://clinic.example", PUBLIC_URL_FOLLOWS_SERVER=False)
        with app.test_request_context("/", base_url="http://10.0.0.5:8000"):
            assert (
                external_url("patient.visit_paid", visit_id=7)
                == "https://clinic.example/me/visits/7/paid"
            )
        app.config["PUBLIC_URL_FOLLOWS_SERVER"] = True
        with app.test_request_context("/", base_url="http://192.168.1.20:8000"):
            assert (
                external_url("patient.visit_paid", visit_id=7)
                == "http://192.168.1.20:8000/me/visits/7/paid"
            )
    finally:
        app.config.update(saved)


def test_checkout_without_the_amounts_shown_is_refused_and_writes_nothing(
    app, world, users, gateway
):
    """``shown`` is required of every caller: without it a TypeError; ``None`` or not two
    whole numbers of paise asked again, nothing reserved, ordered or confirmed (a
    wallet-only payment included); the amounts shown go through. (Before, it defaulted
    to None and skipped the check: a pay post without them took whatever was due.)"""
    patient = users(world.patients[0])
    credit_wallet(patient.id, 60_000)
    visit_id = hold(world, patient)
    with pytest.raises(TypeError):
        checkout.checkout(patient, visit_id, 52_950, CALLBACK)
    for unshown in (None, (52_950,), ("52950", "0"), (52_950, None), (True, 0), 52_950):
        with pytest.raises(BookingError) as err:
            checkout.checkout(patient, visit_id, 52_950, CALLBACK, shown=unshown)
        assert err.value.message == checkout.MSG_PRICE_UNSHOWN
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0
    assert balance(chart.patient_wallet(patient.id)) == 60_000
    assert fresh(visit_id).status == "DRAFT"
    result = checkout.checkout(patient, visit_id, 52_950, CALLBACK, shown=(52_950, 0))
    assert result.redirect_url is None and fresh(visit_id).status == "CONFIRMED"


def test_checkout_of_other_amounts_than_the_button_stated_is_refused_and_writes_nothing(
    app, world, users, gateway
):
    """The button stated ₹200 from the wallet and ₹329.50 online; the wallet now holds
    ₹100: refused with the new split, nothing reserved, no order; the amounts stated
    again go through."""
    patient = users(world.patients[0])
    credit_wallet(patient.id, 10_000)
    visit_id = hold(world, patient)
    with pytest.raises(BookingError, match="₹100 from your wallet and ₹429.50 online, not ₹200"):
        checkout.checkout(patient, visit_id, 20_000, CALLBACK, shown=(20_000, 32_950))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0
    assert balance(chart.patient_wallet(patient.id)) == 10_000
    assert fresh(visit_id).status == "DRAFT"
    result = checkout.checkout(patient, visit_id, 20_000, CALLBACK, shown=(10_000, 42_950))
    assert result.payment.amount == 42_950 and result.redirect_url
