"""Razorpay webhook handlers, registered with the gateway's registry. They run inside the
webhook job's transaction (no commit here) and tolerate any order and any repetition."""
import logging

from portal.gateway.webhook_processing import on_event
from portal.payments import service

log = logging.getLogger("portal.payments")


def _payment_for(event, entity):
    link = event.entity("payment_link") or {}
    return service.find_payment(order_id=entity.get("order_id"), link_id=link.get("id"),
                                notes=entity.get("notes") or link.get("notes"),
                                razorpay_payment_id=entity.get("id"))


@on_event("payment.authorized")
def payment_authorized(event):
    entity = event.entity("payment") or {}
    payment = _payment_for(event, entity)
    if payment is None:
        log.info("payment.authorized for an unknown order %s", entity.get("order_id"))
        return
    service.authorized(payment, razorpay_payment_id=entity["id"],
                       amount=int(entity.get("amount") or 0), method=entity.get("method"))


@on_event("payment.captured", "order.paid", "payment_link.paid")
def payment_captured(event):
    entity = event.entity("payment") or {}
    if not entity.get("id"):
        return
    if event.event_type == "payment.captured" and entity.get("status") not in (None, "captured"):
        return
    payment = _payment_for(event, entity)
    if payment is None:
        log.warning("%s for an unknown order %s (payment %s)", event.event_type,
                    entity.get("order_id"), entity.get("id"))
        return
    service.capture(payment, razorpay_payment_id=entity["id"],
                    amount=int(entity.get("amount") or 0), method=entity.get("method"),
                    source=event.event_type)


@on_event("payment.failed")
def payment_failed(event):
    entity = event.entity("payment") or {}
    payment = _payment_for(event, entity)
    if payment is None or not entity.get("id"):
        return
    service.failed(payment, razorpay_payment_id=entity["id"],
                   detail={k: entity.get(k) for k in ("error_code", "error_description",
                                                      "error_reason", "method")})


@on_event("payment_link.expired", "payment_link.cancelled")
def payment_link_ended(event):
    link = event.entity("payment_link") or {}
    payment = service.find_payment(link_id=link.get("id"), notes=link.get("notes"))
    if payment is None:
        return
    service.link_ended(payment, event.event_type.rpartition(".")[2])
