"""Issue #15, finding 4 (webhooks): a signed body must still be a JSON event of the right
shape, sent as JSON; deep nesting is a 400, not a RecursionError; one event id is one event
across both endpoints; an event stored with a bad shape is parked, not retried."""

import json

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.gateway.models import WebhookEvent
from portal.gateway.webhook_processing import HANDLERS, on_event, process_webhook_event
from portal.gateway.webhooks import sign_body


def post(client, app, body, event_id="evt_1", source="razorpay", content_type="application/json"):
    secret = app.config[
        "RAZORPAY_WEBHOOK_SECRET" if source == "razorpay" else "RAZORPAYX_WEBHOOK_SECRET"
    ]
    return client.post(
        f"/webhooks/{source}",
        data=body,
        headers={
            "Content-Type": content_type,
            "X-Razorpay-Signature": sign_body(body, secret),
            "X-Razorpay-Event-Id": event_id,
        },
    )


def event(name="payment.captured", **payload):
    payload = payload or {
        "payment": {"entity": {"id": "pay_1", "amount": 1000, "status": "captured"}}
    }
    return json.dumps({"entity": "event", "event": name, "payload": payload}).encode()


def stored(app):
    with app.app_context():
        return db.session.scalars(sa.select(WebhookEvent)).all()


@pytest.fixture
def crashes():
    """A handler that would crash on a wrong shape (as the real ones do)."""
    seen = []

    def handler(evt):
        seen.append(int(evt.entity("payment")["amount"]))

    on_event("payment.captured")(handler)
    yield seen
    HANDLERS["payment.captured"].remove(handler)


def test_a_deeply_nested_body_is_a_400(app, client):
    body = b'{"event": "payment.captured", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = post(client, app, body)
    assert response.status_code == 400
    assert stored(app) == []


def test_the_body_must_be_sent_as_json(app, client):
    response = post(client, app, event(), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert stored(app) == []


@pytest.mark.parametrize(
    "body",
    [
        event(payment={"entity": {"id": "pay_1", "amount": "a lakh"}}),
        event(payment={"entity": {"id": "pay_1", "amount": 1e21}}),
        event(payment={"entity": {"id": ["pay_1"], "amount": 100}}),
        event(payment={"entity": "pay_1"}),
        event(payment=[]),
        event(refund={"entity": {"id": "rfnd_1"}}),  # a payment event without a payment
        event("refund.processed", refund={"entity": {"id": 7}}),
        event("payout.processed", payout={"entity": {"id": "pout_1", "amount": -5}}),
        json.dumps({"event": {"name": "payment.captured"}, "payload": {}}).encode(),
        json.dumps({"event": "payment.captured", "payload": "x"}).encode(),
        json.dumps({"event": "payment.captured", "created_at": "yesterday"}).encode(),
        json.dumps([1, 2, 3]).encode(),
    ],
)
def test_signed_events_of_the_wrong_shape_are_refused(app, client, crashes, body):
    response = post(client, app, body)
    assert response.status_code == 400, response.json
    assert "not a Razorpay event" in response.json["error"]
    assert stored(app) == [] and crashes == []


def test_a_well_formed_event_is_still_stored_and_handled(app, client, crashes):
    assert post(client, app, event()).json == {"status": "stored"}
    assert crashes == [1000]


def test_one_event_id_is_one_event_across_both_endpoints(app, client):
    payout = event("payout.processed", payout={"entity": {"id": "pout_1", "amount": 500}})
    assert post(client, app, payout, event_id="evt_x", source="razorpayx").json["status"] == (
        "stored"
    )
    again = post(client, app, event(), event_id="evt_x", source="razorpay")
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    assert [e.source for e in stored(app)] == ["razorpayx"]


def test_an_event_stored_with_a_bad_shape_is_parked_not_crashed(app, crashes):
    with app.app_context():
        row = WebhookEvent(
            source="razorpay",
            event_id="evt_old",
            event_type="payment.captured",
            payload={"event": "payment.captured", "payload": {"payment": {"entity": {}}}},
        )
        db.session.add(row)
        db.session.commit()
        assert process_webhook_event(row.id) is False
        db.session.commit()
        row = db.session.get(WebhookEvent, row.id)
        assert row.processed_at is not None and row.last_error.startswith("parked:")
    assert crashes == []
