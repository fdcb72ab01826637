"""The portal's /webhooks endpoints: verified, stored once, processed once."""

import json
import logging
from collections import Counter

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.gateway.models import WebhookEvent
from portal.gateway.sandbox import create_sandbox_app
from portal.gateway.sandbox.delivery import wsgi_transport
from portal.gateway.webhook_processing import HANDLERS, on_event, process_webhook_event
from portal.gateway.webhooks import sign_body
from portal.outbox import OutboxItem


@pytest.fixture
def handled():
    """Register recording handlers for a test; unregister afterwards."""
    calls = []
    registered = []

    def register(*event_types, fail=None):
        def handler(event):
            if fail:
                fail(event)
            calls.append((event.event_type, event.event_id))

        on_event(*event_types)(handler)
        registered.append((event_types, handler))
        return handler

    yield calls, register
    for event_types, handler in registered:
        for event_type in event_types:
            HANDLERS[event_type].remove(handler)


def event_body(name="payment.captured", **entities):
    entities = entities or {
        "payment": {
            "id": "pay_T3st000000001",
            "entity": "payment",
            "amount": 10_000,
            "status": "captured",
        }
    }
    return json.dumps(
        {
            "entity": "event",
            "account_id": "acc_x",
            "event": name,
            "contains": list(entities),
            "payload": {k: {"entity": v} for k, v in entities.items()},
            "created_at": 1_700_000_000,
        }
    ).encode()


def post(client, app, body, event_id="evt1", source="razorpay", signature=None):
    secret = app.config[
        "RAZORPAY_WEBHOOK_SECRET" if source == "razorpay" else "RAZORPAYX_WEBHOOK_SECRET"
    ]
    return client.post(
        f"/webhooks/{source}",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Razorpay-Signature": signature if signature is not None else sign_body(body, secret),
            "X-Razorpay-Event-Id": event_id,
        },
    )


def rows(app):
    with app.app_context():
        return db.session.scalars(sa.select(WebhookEvent).order_by(WebhookEvent.id)).all()


def test_bad_signature_is_refused_logged_and_not_stored(app, client, caplog):
    body = event_body()
    with caplog.at_level(logging.WARNING):
        answer = post(client, app, body, signature=sign_body(body, "not-the-secret"))
    assert answer.status_code == 400
    assert rows(app) == []
    assert any("bad signature" in r.getMessage() for r in caplog.records)
    assert post(client, app, body, signature="").status_code == 400
    # A valid signature over other bytes (re-serialised JSON) does not pass either.
    other = json.dumps(json.loads(body), indent=1).encode()
    assert (
        post(
            client, app, other, signature=sign_body(body, app.config["RAZORPAY_WEBHOOK_SECRET"])
        ).status_code
        == 400
    )
    assert rows(app) == []


def test_event_is_stored_answered_and_processed_once(app, client, handled):
    calls, register = handled
    register("payment.captured")
    body = event_body()
    first = post(client, app, body, event_id="evt_once")
    assert first.status_code == 200 and first.json == {"status": "stored"}
    again = post(client, app, body, event_id="evt_once")
    assert again.status_code == 200 and again.json == {"status": "duplicate"}
    [row] = rows(app)
    assert (row.source, row.event_id, row.event_type) == (
        "razorpay",
        "evt_once",
        "payment.captured",
    )
    assert row.signature_ok and row.processed_at is not None and row.attempts == 1
    assert row.event_created_at == 1_700_000_000
    assert row.entity("payment")["id"] == "pay_T3st000000001"
    assert calls == [("payment.captured", "evt_once")]
    with app.app_context():
        assert process_webhook_event(row.id) is False  # already processed: nothing runs
        db.session.commit()
    assert len(calls) == 1


def test_event_ids_are_unique_across_both_endpoints(app, client, handled):
    """Razorpay's event ids are unique across pay-in and RazorpayX: the same id on the
    other endpoint is a replay, not a second event (issue #15)."""
    body = event_body("payout.processed", payout={"id": "pout_1", "status": "processed"})
    assert post(client, app, body, event_id="same", source="razorpayx").json["status"] == "stored"
    assert post(client, app, event_body(), event_id="same").json["status"] == "duplicate"
    assert [r.source for r in rows(app)] == ["razorpayx"]


def test_malformed_requests(app, client):
    assert post(client, app, b"not json").status_code == 400
    assert post(client, app, event_body(), event_id="").status_code == 400
    assert post(client, app, b'{"no": "event"}').status_code == 400
    assert client.get("/webhooks/razorpay").status_code == 405
    assert rows(app) == []


def test_a_failing_handler_leaves_the_event_for_a_retry(app, client, handled):
    calls, register = handled
    broken = {"on": True}

    def fail(event):
        if broken["on"]:
            raise RuntimeError("ledger not ready")

    register("refund.processed", fail=fail)
    body = event_body("refund.processed", refund={"id": "rfnd_1", "status": "processed"})
    assert post(client, app, body, event_id="evt_retry").status_code == 200  # answered anyway
    [row] = rows(app)
    # The job is the unit of work: its failure is recorded on the outbox item (retried on
    # the outbox's backoff), and the event stays unprocessed.
    assert row.processed_at is None
    with app.app_context():
        [item] = db.session.scalars(sa.select(OutboxItem)).all()
        assert item.done_at is None and "ledger not ready" in item.last_error
    broken["on"] = False
    with app.app_context():
        assert process_webhook_event(row.id) is True
        db.session.commit()
    [row] = rows(app)
    assert row.processed_at is not None and row.last_error is None
    assert calls == [("refund.processed", "evt_retry")]


def test_sandbox_deliveries_twice_and_out_of_order_are_processed_once(app, handled):
    calls, register = handled
    register(
        "payment.authorized",
        "payment.captured",
        "order.paid",
        "refund.created",
        "refund.processed",
        "payout.queued",
        "payout.initiated",
        "payout.processed",
    )
    sandbox_app = create_sandbox_app(
        {
            "KEY_ID": app.config["RAZORPAY_KEY_ID"],
            "KEY_SECRET": app.config["RAZORPAY_KEY_SECRET"],
            "WEBHOOK_URL": "http://localhost/webhooks/razorpay",
            "WEBHOOK_SECRET": app.config["RAZORPAY_WEBHOOK_SECRET"],
            "X_WEBHOOK_URL": "http://localhost/webhooks/razorpayx",
            "X_WEBHOOK_SECRET": app.config["RAZORPAYX_WEBHOOK_SECRET"],
            "X_ACCOUNT_NUMBER": app.config["RAZORPAYX_ACCOUNT_NUMBER"],
            "WEBHOOK_THREAD": False,
            "WEBHOOK_TRANSPORT": wsgi_transport(app),
            "SEED": 11,
            "FAULTS": {"duplicate_webhooks": True, "out_of_order": True},
        }
    )
    sandbox = sandbox_app.extensions["razorpay_sandbox"]
    store = sandbox.store
    order = store.create_order({"amount": 50_000, "receipt": "mb-9"})
    payment = store.pay_order(order["id"])
    store.create_refund(payment["id"], {"amount": 10_000}, "rf-9")
    contact, _ = store.create_contact({"name": "Dr Iyer"})
    account, _ = store.create_fund_account(
        {"contact_id": contact["id"], "account_type": "vpa", "vpa": {"address": "iyer@okicici"}}
    )
    store.create_payout(
        {
            "account_number": store.x_account_number,
            "fund_account_id": account["id"],
            "amount": 20_000,
            "mode": "UPI",
            "purpose": "payout",
        },
        "po-9",
    )
    sandbox.advance(10)
    results = sandbox.deliver_pending()
    sandbox.webhooks.transport.close()

    made = sandbox.events()
    assert len(made) == 8
    assert len(results) == 16 and all(status == 200 for _id, status in results)
    # Sent newest first, each twice…
    assert [r[0] for r in results[::2]] == [e["id"] for e in reversed(made)]
    stored = rows(app)
    # …stored once each, and every handler ran exactly once per event.
    assert sorted(r.event_id for r in stored) == sorted(e["id"] for e in made)
    assert all(r.processed_at is not None for r in stored)
    assert Counter(event_id for _type, event_id in calls) == {e["id"]: 1 for e in made}
    assert {r.source for r in stored if r.event_type.startswith("payout.")} == {"razorpayx"}


@pytest.mark.parametrize(
    "source, name, entity",
    [
        (
            "razorpay",
            "payment.downtime.started",
            {"id": "down_F7LroRQAAFuswd", "entity": "payment.downtime", "method": "card",
             "status": "started", "severity": "high", "begin": 1593196031},
        ),
        (
            "razorpayx",
            "payout.downtime.resolved",
            {"id": "down_00000000000001", "entity": "payout.downtime", "method": ["IMPS"],
             "status": "resolved", "begin": 1593196031, "end": 1593199631},
        ),
    ],
)  # fmt: skip
def test_a_signed_downtime_event_is_stored_and_answered(app, client, source, name, entity):
    """Downtime events carry a `payment.downtime` / `payout.downtime` entity, not a payment
    or payout: they were refused with 400, and Razorpay disables a webhook failing for a day
    (RazorpayX allows one webhook per account): every payment or payout event lost
    (review finding, https://razorpay.com/docs/api/payments/downtime/entity)."""
    body = event_body(name, **{entity["entity"]: entity})
    response = post(client, app, body, event_id=f"evt_{name}", source=source)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [r.event_type for r in rows(app)] == [name]
    missing = event_body("payment.captured", **{"payment.downtime": entity})
    assert post(client, app, missing, event_id="evt_bad").status_code == 400


def test_bank_account_numbers_and_fund_account_upi_ids_are_stored_masked(app, client):
    """Whatever RazorpayX event echoes a fund account (a payout's nested ``fund_account``
    here; ``fund_account.validation.*`` in tests/payouts/test_fund_accounts.py), the stored
    payload keeps its last four digits and a masked UPI id, as the fund account's row does
    (docs/privacy.md). The clinic's own RazorpayX account number and a payer's UPI id on a
    payment (erased at the account's closure) are not a provider's bank details: left."""
    from portal.gateway import scrub

    bank = {"ifsc": "HDFC0000053", "name": "Asha Rao", "account_number": "1121431121541121"}
    upi = {"username": "asha.rao", "handle": "okhdfc", "address": "asha.rao@okhdfc"}
    payouts = [
        {"id": f"pout_{kind}", "status": "processed", "fund_account_id": f"fa_{kind}",
         "fund_account": {"id": f"fa_{kind}", "entity": "fund_account",
                          "account_type": kind, kind: details}}
        for kind, details in (("bank_account", bank), ("vpa", upi))
    ]  # fmt: skip
    for payout in payouts:
        body = event_body("payout.processed", payout=payout)
        assert post(client, app, body, event_id=payout["id"], source="razorpayx").status_code == 200
    payment = {"id": "pay_1", "entity": "payment", "vpa": "payer@okicici"}
    assert post(client, app, event_body(payment=payment), event_id="evt_pay").status_code == 200
    stored = {r.event_id: r.payload for r in rows(app)}
    text = json.dumps(stored, ensure_ascii=False)
    assert "1121431121541121" not in text and "asha.rao" not in text
    fund = stored["pout_bank_account"]["payload"]["payout"]["entity"]["fund_account"]
    assert fund["bank_account"] == {**bank, "account_number": "••••1121"}
    fund = stored["pout_vpa"]["payload"]["payout"]["entity"]["fund_account"]
    assert fund["vpa"] == {"username": "as••••••", "handle": "okhdfc", "address": "as••••••@okhdfc"}
    assert stored["evt_pay"]["payload"]["payment"]["entity"]["vpa"] == "payer@okicici"

    transaction = {"payload": {"transaction": {"entity": {"account_number": "7878780080749731"}}}}
    assert scrub.mask_bank_details(transaction) is False  # the clinic's own account
    again = json.loads(json.dumps(stored["pout_vpa"]))
    assert scrub.mask_bank_details(again) is False and again == stored["pout_vpa"]
