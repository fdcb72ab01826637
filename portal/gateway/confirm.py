"""Money-moving webhook events confirmed against the gateway's own record.

A webhook is signed, but the signature proves only who sent it, not that the money moved
(and in the embedded mode the secret once was a published constant). So before a capture,
refund or payout event moves money, the entity is fetched by id through the adapters and
the fields that matter must agree: amount, currency and the order / payment / payout it
belongs to. Handlers then act on the FETCHED record, never on the event body.

``Unconfirmed`` means "the gateway disagrees or does not know it": the caller parks the
event with the reason and raises a HIGH alert (``park``). A gateway that cannot be reached
raises ``GatewayError`` as usual, so the webhook job is retried later."""

import logging

from portal import events
from portal.audit.service import record
from portal.gateway.errors import NotFound

log = logging.getLogger("portal.gateway")

GATEWAY_MISMATCH = "GATEWAY_MISMATCH"
CAPTURED = ("captured", "refunded")  # a refunded payment was captured first


def was_captured(payment):
    """Money came in: captured (refunded later counts), never an authorization the gateway
    gave back uncaptured (Razorpay's auto-refund: status "refunded", ``captured`` false)."""
    return payment.get("status") in CAPTURED and payment.get("captured", True) is not False


class Unconfirmed(Exception):
    """The gateway's record does not confirm the event; ``str(exc)`` is the reason."""


class NotCapturedYet(Unconfirmed):
    """The payment is authorized, its capture still to come (auto-capture runs after the
    authorization; a late authorization waits for it): a signed return for it is genuine,
    and the capture's webhook will confirm the visit."""


def _same_int(a, b):
    try:
        return int(a) == int(b) and not isinstance(a, bool) and not isinstance(b, bool)
    except (TypeError, ValueError):
        return False


def _check(claimed, actual, fields, what):
    for field in fields:
        if field not in claimed:
            continue  # the event did not claim it; the fetched value is used anyway
        mine, theirs = claimed.get(field), actual.get(field)
        same = _same_int(mine, theirs) if field == "amount" else mine == theirs
        if not same:
            raise Unconfirmed(f"{what}: the event says {field}={mine!r}, the gateway {theirs!r}")


def _fetch(fetch, entity_id, what):
    if not isinstance(entity_id, str) or not entity_id.strip() or len(entity_id) > 64:
        raise Unconfirmed(f"{what}: the event carries no usable id")
    try:
        found = fetch(entity_id)
    except NotFound:
        raise Unconfirmed(f"{what} {entity_id} is unknown to the gateway") from None
    if not isinstance(found, dict) or found.get("id") != entity_id:
        raise Unconfirmed(f"{what} {entity_id}: the gateway answered with another entity")
    return found


def confirmed_payment(payin, entity, *, captured=True):
    """The gateway's record of the payment in ``entity`` (amount, currency, order agree;
    captured unless ``captured=False``)."""
    entity = entity if isinstance(entity, dict) else {}
    found = _fetch(payin.fetch_payment, entity.get("id"), "payment")
    _check(entity, found, ("amount", "currency", "order_id"), f"payment {found['id']}")
    if captured and found.get("status") == "authorized":
        raise NotCapturedYet(f"payment {found['id']} is authorized, not captured yet")
    if captured and not was_captured(found):
        raise Unconfirmed(f"payment {found['id']} is {found.get('status')!r} at the gateway")
    if found.get("currency", "INR") != "INR":
        raise Unconfirmed(f"payment {found['id']} is in {found.get('currency')!r}")
    return found


def confirmed_link(payin, link_entity, payment):
    """A ``payment_link.paid`` link: it must know the (confirmed) payment."""
    link_entity = link_entity if isinstance(link_entity, dict) else {}
    found = _fetch(payin.fetch_payment_link, link_entity.get("id"), "payment link")
    paid_ids = {p.get("payment_id") for p in found.get("payments") or [] if isinstance(p, dict)}
    order_id = found.get("order_id")
    if payment["id"] not in paid_ids and not (order_id and order_id == payment.get("order_id")):
        raise Unconfirmed(f"payment link {found['id']} does not hold payment {payment['id']}")
    return found


def confirmed_refund(payin, entity):
    """The gateway's record of the refund in ``entity`` (amount, currency, payment agree)."""
    entity = entity if isinstance(entity, dict) else {}
    found = _fetch(payin.fetch_refund, entity.get("id"), "refund")
    _check(entity, found, ("amount", "currency", "payment_id"), f"refund {found['id']}")
    return found


def confirmed_payout(payouts, entity):
    """The gateway's record of the payout in ``entity`` (amount, currency, fund account
    and reference agree)."""
    entity = entity if isinstance(entity, dict) else {}
    found = _fetch(payouts.fetch_payout, entity.get("id"), "payout")
    _check(
        entity,
        found,
        ("amount", "currency", "fund_account_id", "reference_id"),
        f"payout {found['id']}",
    )
    return found


def park(event, reason, *, link=None):
    """No money moves: the stored event is marked with its reason (it counts as processed,
    so it is not retried), audited, and every admin gets a HIGH alert."""
    reason = str(reason)[:1000]
    if event is not None:
        event.last_error = f"parked: {reason}"
    log.error("webhook %s parked: %s", getattr(event, "event_id", None), reason)
    record(
        None,
        "webhook.parked",
        "webhook_event",
        getattr(event, "id", None),
        after={"event": getattr(event, "event_type", None), "reason": reason},
    )
    events.gateway_alert.send(
        "gateway",
        severity="HIGH",
        kind=GATEWAY_MISMATCH,
        title="A gateway event did not match the gateway's record",
        message=f"{getattr(event, 'event_type', 'event')} "
        f"{getattr(event, 'event_id', '')}: {reason}. No money was moved.",
        link=link,
        dedupe_key=f"webhook-parked:{getattr(event, 'id', reason)}",
    )
