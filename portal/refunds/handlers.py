"""Razorpay ``refund.*`` webhooks. They run inside the webhook job's transaction (no
commit here) and tolerate any order and any repetition: states are compared, postings
carry idempotency keys."""
import logging

from portal.gateway.webhook_processing import on_event
from portal.refunds import service

log = logging.getLogger("portal.refunds")


@on_event("refund.created", "refund.processed", "refund.failed")
def refund_event(event):
    entity = event.entity("refund") or {}
    if not entity.get("id"):
        return
    refund = service.find_refund_for(entity)
    if refund is None:
        log.info("%s for an unknown refund %s", event.event_type, entity.get("id"))
        return
    if event.event_type == "refund.created":
        # Only learn the id; the status moves with processed/failed (or the poll).
        entity = {"id": entity["id"], "status": "pending"}
    service.apply_gateway_refund(refund, entity)
