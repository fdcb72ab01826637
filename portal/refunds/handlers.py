"""Razorpay ``refund.*`` webhooks, registered with the gateway's registry when the app
loads this module. Any order and any repetition: states are compared, postings carry
idempotency keys."""

from portal.gateway.webhook_processing import on_event
from portal.refunds import execute


@on_event("refund.created", "refund.processed", "refund.failed")
def refund_event(event):
    entity = event.entity("refund") or {}
    if not entity.get("id"):
        return
    execute.refund_event(entity, created=event.event_type == "refund.created")
