"""Razorpay ``refund.*`` webhooks, registered with the gateway's registry when the app
loads this module. Any order and any repetition: states are compared, postings carry
idempotency keys.

A refund event moves money (processed) or re-sends it (failed), so the refund is fetched
by id and only the gateway's own record is applied; one that disagrees is parked with a
HIGH alert (``portal.gateway.confirm``)."""

from portal.gateway import get_payin
from portal.gateway.confirm import Unconfirmed, confirmed_refund, park
from portal.gateway.webhook_processing import on_event
from portal.refunds import execute


@on_event("refund.created", "refund.processed", "refund.failed")
def refund_event(event):
    entity = event.entity("refund") or {}
    if not entity.get("id"):
        return
    if execute.find_refund_for(entity) is None:  # not ours: nothing to move, no need to ask
        return
    try:
        found = confirmed_refund(get_payin(), entity)
        execute.refund_event(found, created=event.event_type == "refund.created")
    except Unconfirmed as exc:
        park(event, exc)
