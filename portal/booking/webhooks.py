"""Razorpay pay-in webhooks about visits and reschedule fees, registered with the
gateway's registry when the app loads this module. Each handler looks up our row and
calls one use case (a unit of work nested in the webhook job's); any order and any
repetition is fine."""

import logging

from portal.booking import payment_events, reschedule_payment
from portal.gateway.webhook_processing import on_event
from portal.payments import records

log = logging.getLogger("portal.booking")


def _payment_for(event, entity):
    link = event.entity("payment_link") or {}
    return records.find_payment(
        order_id=entity.get("order_id"),
        link_id=link.get("id"),
        notes=entity.get("notes") or link.get("notes"),
        razorpay_payment_id=entity.get("id"),
    )


def _captured(event, entity):
    """A capture event worth acting on (``payment.captured`` only once it says so)."""
    if not entity.get("id"):
        return False
    return event.event_type != "payment.captured" or entity.get("status") in (None, "captured")


@on_event("payment.authorized")
def payment_authorized(event):
    entity = event.entity("payment") or {}
    payment = _payment_for(event, entity)
    if payment is None:
        log.info("payment.authorized for an unknown order %s", entity.get("order_id"))
        return
    payment_events.authorized(
        payment,
        razorpay_payment_id=entity["id"],
        amount=int(entity.get("amount") or 0),
        method=entity.get("method"),
    )


@on_event("payment.captured", "order.paid", "payment_link.paid")
def payment_captured(event):
    entity = event.entity("payment") or {}
    if not _captured(event, entity):
        return
    payment = _payment_for(event, entity)
    if payment is None:
        log.warning(
            "%s for an unknown order %s (payment %s)",
            event.event_type,
            entity.get("order_id"),
            entity.get("id"),
        )
        return
    payment_events.capture(
        payment,
        razorpay_payment_id=entity["id"],
        amount=int(entity.get("amount") or 0),
        method=entity.get("method"),
        source=event.event_type,
    )


@on_event("payment.failed")
def payment_failed(event):
    entity = event.entity("payment") or {}
    payment = _payment_for(event, entity)
    if payment is None or not entity.get("id"):
        return
    payment_events.failed(
        payment,
        razorpay_payment_id=entity["id"],
        detail={
            k: entity.get(k) for k in ("error_code", "error_description", "error_reason", "method")
        },
    )


@on_event("payment_link.expired", "payment_link.cancelled")
def payment_link_ended(event):
    link = event.entity("payment_link") or {}
    payment = records.find_payment(link_id=link.get("id"), notes=link.get("notes"))
    if payment is None:
        return
    payment_events.link_ended(payment, event.event_type.rpartition(".")[2])


@on_event("payment.captured", "order.paid")
def reschedule_fee_captured(event):
    entity = event.entity("payment") or {}
    resched = reschedule_payment.find_by_order(entity.get("order_id"))
    if resched is None or not _captured(event, entity):
        return
    reschedule_payment.payment_captured(resched.id, entity["id"], int(entity.get("amount") or 0))
