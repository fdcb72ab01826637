"""A closed account's contact details taken out of the stored Razorpay webhooks
(``portal.privacy.closure``, docs/privacy.md).

``webhook_event.payload`` keeps each event's JSON as received. A payment's entity echoes
the payer's e-mail and mobile (``email``, ``contact``, a UPI ``vpa`` that is often the
mobile number), a payment link's its ``customer`` (name, e-mail, mobile). The payload is
the parsed JSON, not the signed body: its signature was checked once, on receipt
(``gateway.webhooks``, recorded in ``signature_ok``), and is never checked again (the raw
body is not kept), so editing it breaks no verification. Processing never reads these
fields.

The events are found by the ids in them (a payment's, its order's, a link's; a refund's
payment): a scan of the table with the JSON read per row, acceptable for a closure (rare),
not for a page."""

import sqlalchemy as sa
from sqlalchemy.orm.attributes import flag_modified

from portal.extensions import db
from portal.gateway.models import WebhookEvent

PERSONAL = ("email", "contact", "customer", "vpa")


def _entity_field(kind, name):
    return WebhookEvent.payload["payload"][kind]["entity"][name].as_string()


def erase_contact_details(*, payment_ids=(), order_ids=(), link_ids=()):
    """Remove ``PERSONAL`` fields from every entity of the stored events about these
    Razorpay payments, orders and payment links. Returns the number of events changed."""
    payment_ids, order_ids, link_ids = (
        sorted({i for i in ids if i}) for ids in (payment_ids, order_ids, link_ids)
    )
    conditions = []
    if payment_ids:
        conditions += [
            _entity_field("payment", "id").in_(payment_ids),
            _entity_field("refund", "payment_id").in_(payment_ids),
        ]
    if order_ids:
        conditions += [
            _entity_field("order", "id").in_(order_ids),
            _entity_field("payment", "order_id").in_(order_ids),
        ]
    if link_ids:
        conditions.append(_entity_field("payment_link", "id").in_(link_ids))
    if not conditions:
        return 0
    changed = 0
    for event in db.session.scalars(sa.select(WebhookEvent).where(sa.or_(*conditions))):
        payload = event.payload or {}
        touched = False
        for part in (payload.get("payload") or {}).values():
            entity = part.get("entity") if isinstance(part, dict) else None
            if not isinstance(entity, dict):
                continue
            for name in PERSONAL:
                if name in entity:
                    del entity[name]
                    touched = True
        if touched:
            flag_modified(event, "payload")
            changed += 1
    db.session.flush()
    return changed
