"""Issue #15, findings 1 and 6: money minted by a signed event, and the payment return.

A signed webhook proves who sent it, not that money moved: captures are confirmed against
the gateway's own record before they move money. The embedded secrets are per install.
The CSRF-exempt return writes nothing unless it is signed for this visit's order."""

import json
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.booking import lookup, prices, visits
from portal.config import ConfigError, from_environment
from portal.extensions import db
from portal.gateway.models import WebhookEvent
from portal.gateway.webhooks import sign_body
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.notify.models import Notification
from portal.payments.models import PaymentAttempt
from tests.booking.factories import at, post_webhook, quoted_checkout

CALLBACK = "http://portal.test/visits/callback"
LAKH = 100_000 * 100  # ₹1,00,000 in paise
PUBLISHED = "sandbox_webhook_secret"  # the constant the code used to carry


def hold(world, patient, hour=10, doctor=0):
    return visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[doctor]],
        clinic_id=world.clinic,
        start_at=at(1, hour),
    ).master_id


def fresh(visit_id):
    db.session.expire_all()
    return lookup.get_visit(visit_id)


def capture_event(payment_entity, event="payment.captured"):
    payload = {"payment": {"entity": payment_entity}}
    if event == "order.paid":  # an order.paid event carries its order (the shape check)
        payload["order"] = {"entity": {"id": payment_entity["order_id"], "entity": "order"}}
    return {
        "entity": "event",
        "event": event,
        "contains": list(payload),
        "payload": payload,
        "created_at": 1,
    }


def parked(event_id):
    row = db.session.scalar(sa.select(WebhookEvent).where(WebhookEvent.event_id == event_id))
    db.session.refresh(row)
    return row.last_error if row.processed_at is not None else None


def high_alerts():
    return db.session.scalars(
        sa.select(Notification).where(
            Notification.kind == "alert.GATEWAY_MISMATCH", Notification.priority == "HIGH"
        )
    ).all()


# --- 1. the embedded webhook secrets ------------------------------------------------------


def test_embedded_secrets_are_generated_per_install_and_kept(tmp_path):
    env = {"SECRET_KEY": "s" * 32}
    one = from_environment(str(tmp_path / "one"), env)
    two = from_environment(str(tmp_path / "two"), env)
    names = ("RAZORPAY_WEBHOOK_SECRET", "RAZORPAYX_WEBHOOK_SECRET", "RAZORPAY_KEY_SECRET")
    for name in names:
        assert one[name] != two[name], name
        assert one[name] not in (PUBLISHED, "sandbox_secret") and len(one[name]) >= 32
    # Kept under instance/: a restart signs with the same secret.
    assert (
        from_environment(str(tmp_path / "one"), env)["RAZORPAY_WEBHOOK_SECRET"]
        == (one["RAZORPAY_WEBHOOK_SECRET"])
    )
    assert (tmp_path / "one" / "razorpay_webhook_secret").read_text() == one[
        "RAZORPAY_WEBHOOK_SECRET"
    ]
    # Outside the embedded mode nothing is invented: a start without them is refused.
    with pytest.raises(ConfigError, match="RAZORPAY_WEBHOOK_SECRET"):
        from_environment(str(tmp_path / "p"), {**env, "DATABASE_URL": "postgresql://x/y"})


def test_a_body_signed_with_the_published_constant_is_refused(app, world, users):
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    body = json.dumps(capture_event({"id": "pay_Const0001", "amount": LAKH})).encode()
    for path in ("/webhooks/razorpay", "/webhooks/razorpayx"):
        response = app.test_client().post(
            path,
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Razorpay-Event-Id": "evt_const_1",
                "X-Razorpay-Signature": sign_body(body, PUBLISHED),
            },
        )
        assert response.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 0
    assert fresh(visit_id).status == "DRAFT"


def test_the_mounted_sandbox_signs_with_the_generated_secret(app):
    sandbox = app.extensions.get("razorpay_sandbox")
    if sandbox is None:  # not mounted in this configuration
        return
    assert app.config["RAZORPAY_WEBHOOK_SECRET"] != PUBLISHED
    assert sandbox.webhooks.targets["razorpay"][1] == app.config["RAZORPAY_WEBHOOK_SECRET"]
    assert sandbox.webhooks.targets["razorpayx"][1] == app.config["RAZORPAYX_WEBHOOK_SECRET"]


# --- 2. captures confirmed against the gateway's record --------------------------------


def test_a_signed_capture_claiming_a_lakh_credits_nothing(app, world, users, gateway):
    """The attack of the issue: a correctly SIGNED payment.captured for a real order whose
    body claims ₹1,00,000 used to become an unapplied wallet credit that then paid a visit."""
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    order_id = quoted_checkout(patient, visit_id, callback_url=CALLBACK).payment.razorpay_order_id
    forged = {
        "id": "pay_Forged000001",
        "entity": "payment",
        "amount": LAKH,
        "currency": "INR",
        "order_id": order_id,
        "status": "captured",
        "method": "upi",
        "notes": {},
    }
    post_webhook(app, capture_event(forged), "evt_forged_1")
    post_webhook(app, capture_event(forged, "order.paid"), "evt_forged_2")

    visit = fresh(visit_id)
    assert visit.status == "PENDING_PAYMENT" and visit.attention is None
    assert prices.wallet_balance(patient.id) == 0
    assert balance(chart.GATEWAY_CLEARING) == 0
    assert parked("evt_forged_1").startswith("parked: payment pay_Forged000001 is unknown")
    assert parked("evt_forged_2").startswith("parked:")
    assert high_alerts(), "admins get a HIGH alert"
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "webhook.parked")
        )
        == 2
    )


def test_a_real_payment_with_an_inflated_amount_is_parked_and_the_real_event_confirms(
    app, world, users, gateway
):
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    order_id = quoted_checkout(patient, visit_id, callback_url=CALLBACK).payment.razorpay_order_id
    payment_id = gateway.pay(order_id)["razorpay_payment_id"]
    real = gateway.sandbox.store.payments[payment_id]
    inflated = {**real, "amount": LAKH}
    post_webhook(app, capture_event(inflated), "evt_inflated")
    assert "amount" in parked("evt_inflated")
    assert fresh(visit_id).status == "PENDING_PAYMENT" and prices.wallet_balance(patient.id) == 0

    gateway.deliver()  # the gateway's own events, matching its record
    visit = fresh(visit_id)
    assert visit.status == "CONFIRMED" and prices.wallet_balance(patient.id) == 0


def test_a_real_payment_of_another_order_is_parked(app, world, users, gateway):
    patient = users(world.patients[0])
    cheap = hold(world, patient, hour=10)
    other = users(world.patients[1])
    target = hold(world, other, hour=11, doctor=1)
    cheap_order = quoted_checkout(patient, cheap, callback_url=CALLBACK).payment
    target_order = quoted_checkout(other, target, callback_url=CALLBACK).payment
    payment_id = gateway.pay(cheap_order.razorpay_order_id)["razorpay_payment_id"]
    entity = {
        **gateway.sandbox.store.payments[payment_id],
        "order_id": target_order.razorpay_order_id,
    }
    post_webhook(app, capture_event(entity), "evt_other_order")
    assert "order_id" in parked("evt_other_order")
    assert fresh(target).status == "PENDING_PAYMENT"


def test_what_the_gateway_really_captured_is_what_counts(app, world, users, gateway):
    """A capture the gateway does hold, of another amount than asked: its amount (not the
    body's) goes to the wallet and the visit is flagged (the old wrong-amount rule)."""
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    order_id = quoted_checkout(patient, visit_id, callback_url=CALLBACK).payment.razorpay_order_id
    payment_id = gateway.pay(order_id)["razorpay_payment_id"]
    gateway.sandbox.store.payments[payment_id]["amount"] = 100  # the gateway took ₹1
    post_webhook(app, capture_event({"id": payment_id, "order_id": order_id}), "evt_small")
    visit = fresh(visit_id)
    assert visit.status == "PENDING_PAYMENT" and visit.attention == "AMOUNT_MISMATCH"
    assert prices.wallet_balance(patient.id) == 100


# --- 6. the payment return ------------------------------------------------------------


def _timeline_rows():
    return db.session.scalar(sa.select(sa.func.count()).select_from(PaymentAttempt))


def _flashes(client):
    with client.session_transaction() as session:
        return [text for _cat, text in session.get("_flashes", [])]


def test_an_anonymous_return_writes_nothing_and_flashes_no_attacker_text(
    app, world, users, gateway
):
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    order_id = quoted_checkout(patient, visit_id, callback_url=CALLBACK).payment.razorpay_order_id
    before = _timeline_rows()
    client = app.test_client()
    for form, outcome in (
        ({"error[description]": "Your card is blocked, call +91 99999 00000"}, "unpaid"),
        (
            {
                "razorpay_order_id": order_id,
                "razorpay_payment_id": "pay_Anon00000001",
                "razorpay_signature": "f" * 64,
            },
            "unverified",
        ),
    ):
        response = client.post(f"/me/visits/{visit_id}/paid", data=form)
        assert response.status_code == 303
        # A fixed code for the signed-in page to tell; nothing in the (cookieless) session.
        returned = f"/me/visits/{visit_id}/returned?outcome={outcome}"
        assert response.headers["Location"].endswith(returned)
        assert _flashes(client) == []
    db.session.expire_all()
    assert _timeline_rows() == before
    assert fresh(visit_id).status == "PENDING_PAYMENT"


def test_a_return_signed_for_another_visits_order_writes_nothing(app, world, users, gateway):
    patient = users(world.patients[0])
    mine = hold(world, patient, hour=10)
    stranger = users(world.patients[1])
    theirs = hold(world, stranger, hour=11, doctor=1)
    quoted_checkout(stranger, theirs, callback_url=CALLBACK)
    order_id = quoted_checkout(patient, mine, callback_url=CALLBACK).payment.razorpay_order_id
    params = gateway.pay(order_id)  # genuinely signed, for MY visit's order
    before = _timeline_rows()
    response = app.test_client().post(f"/me/visits/{theirs}/paid", data=params)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/me/visits/{theirs}/returned?outcome=unverified")
    db.session.expire_all()
    assert _timeline_rows() == before
    assert fresh(mine).status == "PENDING_PAYMENT" and fresh(theirs).status == "PENDING_PAYMENT"

    # The same return posted to its own visit confirms it.
    response = app.test_client().post(f"/me/visits/{mine}/paid", data=params)
    assert urlsplit(response.headers["Location"]).path == f"/me/visits/{mine}/confirmation"
    assert fresh(mine).status == "CONFIRMED"


def test_a_signed_return_for_a_payment_the_gateway_does_not_hold_is_refused(
    app, world, users, gateway
):
    """A return signed with the key secret but naming a payment the gateway never saw (the
    key secret was a published constant): confirmed nothing, wrote nothing."""
    from portal.gateway.sandbox.common import sign

    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    order_id = quoted_checkout(patient, visit_id, callback_url=CALLBACK).payment.razorpay_order_id
    before = _timeline_rows()
    fake = "pay_NeverPaid0001"
    params = {
        "razorpay_order_id": order_id,
        "razorpay_payment_id": fake,
        "razorpay_signature": sign(f"{order_id}|{fake}", app.config["RAZORPAY_KEY_SECRET"]),
    }
    response = app.test_client().post(f"/me/visits/{visit_id}/paid", data=params)
    assert response.headers["Location"].endswith(
        f"/me/visits/{visit_id}/returned?outcome=unverified"
    )
    db.session.expire_all()
    assert _timeline_rows() == before and fresh(visit_id).status == "PENDING_PAYMENT"


def test_a_signed_return_while_the_gateway_is_unreachable_waits_for_the_webhook(
    app, world, users, gateway, monkeypatch
):
    """Signed and matching, but the gateway cannot confirm it now: nothing is written (no
    amount is assumed); the patient is told it is being confirmed; the webhook confirms."""
    from portal.gateway import GatewayUnavailable, get_payin

    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    order_id = quoted_checkout(patient, visit_id, callback_url=CALLBACK).payment.razorpay_order_id
    params = gateway.pay(order_id)
    before = _timeline_rows()

    def down(payment_id):
        raise GatewayUnavailable("Razorpay unreachable")

    monkeypatch.setattr(get_payin(), "fetch_payment", down)
    client = app.test_client()
    response = client.post(f"/me/visits/{visit_id}/paid", data=params)
    assert response.headers["Location"].endswith(
        f"/me/visits/{visit_id}/returned?outcome=confirming"
    )
    assert _flashes(client) == []  # told by the signed-in page it redirects to
    db.session.expire_all()
    assert _timeline_rows() == before and fresh(visit_id).status == "PENDING_PAYMENT"

    monkeypatch.undo()
    gateway.deliver()
    assert fresh(visit_id).status == "CONFIRMED"


def test_a_signed_return_for_an_authorized_payment_waits_for_its_capture(
    app, world, users, gateway, caplog
):
    """Razorpay may hold a payment authorized, its capture to come (late authorization,
    https://razorpay.com/docs/payments/payments/capture-settings/): its signed return is
    genuine. The patient read "We could not verify this payment" and an ERROR was logged
    (review finding); they are told it is being confirmed, and the capture confirms."""
    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    order_id = quoted_checkout(patient, visit_id, callback_url=CALLBACK).payment.razorpay_order_id
    params = gateway.pay(order_id)
    paid = gateway.sandbox.store.payments[params["razorpay_payment_id"]]
    status = paid["status"], paid.get("captured", True)
    paid.update(status="authorized", captured=False)
    client = app.test_client()
    response = client.post(f"/me/visits/{visit_id}/paid", data=params)
    assert response.headers["Location"].endswith(
        f"/me/visits/{visit_id}/returned?outcome=confirming"
    )
    assert _flashes(client) == []  # told by the signed-in page it redirects to
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    paid.update(status=status[0], captured=status[1])
    gateway.deliver()
    assert fresh(visit_id).status == "CONFIRMED"
