"""Issue #15, finding 1: a signed ``payout.*`` event moves no money by itself; the payout
is fetched from RazorpayX and only its record is applied (mismatch: parked, HIGH alert)."""

import json

import sqlalchemy as sa

from portal.domain.states import PayoutStatus
from portal.extensions import db
from portal.gateway.models import WebhookEvent
from portal.gateway.webhooks import sign_body
from tests.payouts.conftest import X_WEBHOOK_SECRET, payable, payouts_of


def post_x(app, name, entity, event_id):
    payload = {
        "entity": "event",
        "event": name,
        "contains": ["payout"],
        "payload": {"payout": {"entity": entity}},
        "created_at": 1,
    }
    body = json.dumps(payload).encode()
    response = app.test_client().post(
        "/webhooks/razorpayx",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Razorpay-Event-Id": event_id,
            "X-Razorpay-Signature": sign_body(body, X_WEBHOOK_SECRET),
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    db.session.expire_all()


def last_error(event_id):
    row = db.session.scalar(sa.select(WebhookEvent).where(WebhookEvent.event_id == event_id))
    return row.last_error


def test_a_forged_reversal_of_a_processed_payout_returns_nothing(app, world, x):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and payable(provider.id) == 0
    real = next(p for p in x.payouts() if p["id"] == payout.razorpay_payout_id)

    # The real payout, its body claiming a reversal the bank never made.
    post_x(app, "payout.reversed", {**real, "status": "reversed"}, "evt_fake_reversal")
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and not payout.returned
    assert payable(provider.id) == 0

    # A payout RazorpayX never made, pointing at ours through the notes.
    forged = {**real, "id": "pout_Forged000001", "status": "reversed"}
    post_x(app, "payout.reversed", forged, "evt_unknown_payout")
    assert last_error("evt_unknown_payout").startswith("parked: payout pout_Forged000001")
    # The real payout with another amount.
    post_x(app, "payout.failed", {**real, "amount": 1, "status": "failed"}, "evt_payout_amount")
    assert "amount" in last_error("evt_payout_amount")
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and not payout.returned
    assert payable(provider.id) == 0
