"""Issue #15, finding 1: a signed ``refund.*`` event moves no money by itself; the refund
is fetched from the gateway and only its record is applied (mismatch: parked, HIGH alert)."""

import sqlalchemy as sa

from portal.extensions import db
from portal.gateway.models import WebhookEvent
from portal.notify.models import Notification
from portal.refunds import lookup as refunds_lookup
from portal.refunds.models import Refund
from tests.booking.factories import at, post_webhook
from tests.refunds.helpers import book_and_pay, ledger_kinds, quoted_cancel, settle_refunds


def pending_refund(world, users, gateway):
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
    quoted_cancel(patient, visit.id, [visit.items[0].id])
    db.session.expire_all()
    [refund] = refunds_lookup.refunds_for_visit(visit.id)
    assert refund.status == "PENDING" and refund.razorpay_refund_id
    return refund


def refund_event(entity, name="refund.processed"):
    return {
        "entity": "event",
        "event": name,
        "contains": ["refund"],
        "payload": {"refund": {"entity": entity}},
        "created_at": 1,
    }


def last_error(event_id):
    row = db.session.scalar(sa.select(WebhookEvent).where(WebhookEvent.event_id == event_id))
    db.session.refresh(row)
    return row.last_error


def test_a_forged_processed_event_does_not_process_a_pending_refund(app, world, users, gateway):
    refund = pending_refund(world, users, gateway)
    entity = {
        "id": refund.razorpay_refund_id,
        "entity": "refund",
        "amount": refund.amount,
        "currency": "INR",
        "payment_id": refund.razorpay_payment_id,
        "status": "processed",  # the gateway still says pending
        "notes": {"portal_refund": str(refund.id)},
    }
    post_webhook(app, refund_event(entity), "evt_refund_early")
    db.session.expire_all()
    assert db.session.get(Refund, refund.id).status == "PENDING"
    assert ledger_kinds("refund_processed") == []

    settle_refunds(gateway)  # the gateway finishes it: now it counts, once
    assert db.session.get(Refund, refund.id).status == "PROCESSED"
    assert len(ledger_kinds("refund_processed")) == 1


def test_a_refund_the_gateway_does_not_hold_or_of_another_amount_is_parked(
    app, world, users, gateway
):
    refund = pending_refund(world, users, gateway)
    unknown = {
        "id": "rfnd_Forged000001",
        "amount": refund.amount,
        "payment_id": refund.razorpay_payment_id,
        "status": "processed",
        "notes": {"portal_refund": str(refund.id)},
    }
    post_webhook(app, refund_event(unknown), "evt_refund_unknown")
    assert last_error("evt_refund_unknown").startswith(
        "parked: refund rfnd_Forged000001 is unknown"
    )
    inflated = {**unknown, "id": refund.razorpay_refund_id, "amount": refund.amount * 10}
    post_webhook(app, refund_event(inflated, "refund.failed"), "evt_refund_inflated")
    assert "amount" in last_error("evt_refund_inflated")
    db.session.expire_all()
    refund = db.session.get(Refund, refund.id)
    assert refund.status == "PENDING" and not refund.superseded
    assert db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(Notification.kind == "alert.GATEWAY_MISMATCH", Notification.priority == "HIGH")
    )
