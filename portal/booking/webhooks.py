"""Razorpay pay-in webhooks about visits and reschedule fees, registered with the
gateway's registry when the app loads this module. Each handler looks up our row and
calls one use case (a unit of work nested in the webhook job's); any order and any
repetition is fine.

A capture moves money, so it is confirmed against the gateway's own record first
(``portal.gateway.confirm``): the amount, method and order used are the FETCHED ones; a
disagreement parks the event with a HIGH alert and moves nothing."""

import logging
import weakref

import sqlalchemy as sa

from portal.booking import links, payment_events, reschedule_payment
from portal.booking.models import MasterBooking
from portal.extensions import db
from portal.gateway import get_payin
from portal.gateway.confirm import Unconfirmed, confirmed_link, confirmed_payment, park
from portal.gateway.webhook_processing import on_event
from portal.payments import records
from portal.payments.models import LINK

log = logging.getLogger("portal.booking")


# What the receipt's predicates read about one event, kept for that event only: the
# capture's predicate finds the payment, and the reschedule fee's predicate needs to know
# whether the order is that payment's (a weak key: gone with the event object).
_READ = weakref.WeakKeyDictionary()


def _payment_for(event, entity):
    # A link in the body counts only on a link event, where confirmed_link has bound it.
    link = event.entity("payment_link") or {}
    if event.event_type == "payment.captured" or event.event_type == "order.paid":
        link = {}
    notes = entity.get("notes") or link.get("notes")
    payment = records.find_payment(
        order_id=entity.get("order_id"),
        link_id=link.get("id"),
        notes=notes,
        razorpay_payment_id=entity.get("id"),
    )
    if payment is not None and not _of_the_named_visit(payment, entity, link, notes):
        return None
    return payment


def _of_the_named_visit(payment, entity, link, notes):
    """A link's row found only by our id in the notes must be of the visit the notes name
    (SQLite may have handed a rolled-back row's id to another visit's link)."""
    if payment.kind != LINK or not isinstance(notes, dict) or not notes.get("visit"):
        return True
    if payment.razorpay_link_id and payment.razorpay_link_id == link.get("id"):
        return True
    if entity.get("order_id") and payment.razorpay_order_id == entity.get("order_id"):
        return True
    number = db.session.scalar(
        sa.select(MasterBooking.number).where(MasterBooking.id == payment.master_id)
    )
    return number == notes["visit"]


def _payment_at_receipt(event, entity):
    """``_payment_for``, read once per event by the receipt's predicates."""
    kept = _READ.setdefault(event, {})
    if "payment" not in kept:
        kept["payment"] = _payment_for(event, entity)
    return kept["payment"]


def _captured(event, entity):
    """A capture event worth acting on (``payment.captured`` only once it says so)."""
    if not entity.get("id"):
        return False
    return event.event_type != "payment.captured" or entity.get("status") in (None, "captured")


def _repeat(known, entity):
    """Already captured under this gateway id and confirmed with the gateway (the signed
    return or an earlier event): a repeat moves nothing (payment_events.capture), so the
    gateway is not asked again. Most capture events are such repeats."""
    return records.captured_under(known, entity["id"])


def _authorized_settled(event):
    """``payment_authorized`` would do nothing: the payment is captured already under
    that id (an unknown order is left to the job, which says so in the log)."""
    entity = event.entity("payment") or {}
    if not entity.get("id"):
        return False
    known = _payment_at_receipt(event, entity)
    return known is not None and _repeat(known, entity)


@on_event("payment.authorized", settled=_authorized_settled)
def payment_authorized(event):
    """An authorization matters while the payment is not captured: the bank said yes and
    the capture is to come (a payment stuck there is worth an operator's look). Once it
    is captured under that id, the capture's line says it all, and nothing is added;
    after a signed return, Razorpay's authorized event is such a late one."""
    entity = event.entity("payment") or {}
    payment = _payment_for(event, entity)
    if payment is None:
        log.info("payment.authorized for an unknown order %s", entity.get("order_id"))
        return
    if entity.get("id") and _repeat(payment, entity):
        return
    payment_events.authorized(
        payment,
        razorpay_payment_id=entity["id"],
        amount=int(entity.get("amount") or 0),
        method=entity.get("method"),
    )


def _confirmed(event, entity):
    """The gateway's record of the captured payment, or None (the event is parked)."""
    payin = get_payin()
    try:
        found = confirmed_payment(payin, entity)
        if event.event_type == "payment_link.paid":
            confirmed_link(payin, event.entity("payment_link"), found)
        order = event.entity("order")
        if isinstance(order, dict) and order.get("id") not in (None, found.get("order_id")):
            raise Unconfirmed(f"order {order.get('id')!r} is not payment {found['id']}'s")
    except Unconfirmed as exc:
        park(event, exc)
        return None
    return found


def _unknown(event, entity):
    if entity.get("id"):
        log.warning(
            "%s for an unknown order %s (payment %s)",
            event.event_type,
            entity.get("order_id"),
            entity.get("id"),
        )


def _capture_settled(event):
    """``payment_captured`` would do nothing: not a capture, or a repeat (an unknown
    order is left to the job, which says so in the log)."""
    entity = event.entity("payment") or {}
    if not _captured(event, entity):
        return True
    known = _payment_at_receipt(event, entity)
    return known is not None and _repeat(known, entity)


@on_event("payment.captured", "order.paid", "payment_link.paid", settled=_capture_settled)
def payment_captured(event):
    entity = event.entity("payment") or {}
    if not _captured(event, entity):
        return
    known = _payment_for(event, entity)
    if known is None and event.event_type == "payment_link.paid":
        return _orphan_link_paid(event, entity)
    if known is None:  # not ours: nothing to move, no need to ask
        _unknown(event, entity)
        return
    if _repeat(known, entity):
        return
    confirmed = _confirmed(event, entity)
    if confirmed is None:
        return
    # From here on only the gateway's values: the body could claim any amount.
    entity = {**entity, **confirmed}
    payment = _payment_for(event, entity)
    if payment is None:
        _unknown(event, entity)
        return
    _capture(payment, entity, event)


def _capture(payment, found, event):
    """The payment captured on our row, with the gateway's own values (``found``)."""
    payment_events.capture(
        payment,
        razorpay_payment_id=found["id"],
        amount=int(found.get("amount") or 0),
        method=found.get("method"),
        source=event.event_type,
    )


def _orphan_link_paid(event, entity):
    """A paid link no payment row holds: made at Razorpay, its creation's answer lost and
    never found by a retry. Confirmed with the gateway, recorded on the visit its notes
    name (``links.adopt_link``) and captured there as a late payment, so money taken on
    such a link is never left unrecorded."""
    payin = get_payin()
    try:
        found = confirmed_payment(payin, entity)
        link = confirmed_link(payin, event.entity("payment_link"), found)
    except Unconfirmed as exc:
        park(event, exc)
        return
    payment = links.adopt_link(link)
    if payment is None:
        _unknown(event, entity)
        return
    _capture(payment, found, event)


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
    if event.event_type == "payment_link.expired":
        links.expired_at_gateway(payment)  # what the expiry sweep does, once
    else:
        payment_events.link_cancelled(payment)


def _fee_settled(event):
    """``reschedule_fee_captured`` would do nothing: not a capture, or no reschedule's.
    An order is created for a visit's payment or for a reschedule fee, never both: when
    the capture's predicate found a visit's payment by this order, no look-up is needed."""
    entity = event.entity("payment") or {}
    if not _captured(event, entity):
        return True
    order_id = entity.get("order_id")
    visits = _READ.get(event, {}).get("payment")
    if order_id and visits is not None and visits.razorpay_order_id == order_id:
        return True
    return reschedule_payment.find_by_order(order_id) is None


@on_event("payment.captured", "order.paid", settled=_fee_settled)
def reschedule_fee_captured(event):
    entity = event.entity("payment") or {}
    resched = reschedule_payment.find_by_order(entity.get("order_id"))
    if resched is None or not _captured(event, entity):
        return
    confirmed = _confirmed(event, entity)
    if confirmed is None:
        return
    reschedule_payment.payment_captured(resched.id, confirmed["id"], int(confirmed["amount"]))
