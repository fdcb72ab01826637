"""What is kept of a person in the stored Razorpay and RazorpayX webhooks
(``webhook_event.payload``, docs/privacy.md "What is kept of the gateway's webhooks").

``webhook_event.payload`` keeps each event's parsed JSON. Two things are taken out of it:

* **On receipt, of every event** (``for_storage``, called by ``record_event`` before the
  row is written): a provider's bank account number is cut to its last four digits and a
  fund account's UPI id masked, as the fund account's own row keeps them
  (``domain.bank_details``). RazorpayX echoes the whole fund account in
  ``fund_account.validation.*`` (``fund_account.bank_account.account_number``,
  ``fund_account.vpa.address``/``username``), and may nest it elsewhere (a payout's
  ``fund_account``), so every ``bank_account`` / ``payer_bank_account`` object and every
  ``vpa`` object (RazorpayX's ``{username, handle, address}``) is masked wherever it stands
  in the event. The clinic's own RazorpayX account number (a ``transaction``'s
  ``account_number``, not inside either) is the clinic's, not a person's: left.
* **When a patient closes their account** (``erase_contact_details``, called by
  ``privacy.closure``): the ``PERSONAL`` fields of the entities of the events about their
  payments, orders and payment links.

The payload is the parsed JSON, not the signed body: its signature was checked once, on
receipt (``gateway.webhooks``, recorded in ``signature_ok``), and is never checked again
(the raw body is not kept), so editing it breaks no verification. Processing never reads
these fields (the validation handler reads the validation's id, status and results).

The closure's events are found by the ids in them (a payment's, its order's, a link's; a
refund's payment): a scan of the table with the JSON read per row, acceptable for a
closure (rare), not for a page."""

import copy

import sqlalchemy as sa
from sqlalchemy.orm.attributes import flag_modified

from portal.domain.bank_details import mask_account_number, mask_vpa, mask_vpa_user
from portal.extensions import db
from portal.gateway.models import WebhookEvent

# What of a person each Razorpay entity carries, by dotted path within the entity: what a
# closure erases (Razorpay's API reference and webhook samples, docs/privacy.md).
# - payment: the payer's e-mail and mobile; a UPI payer's id (``vpa``, and in newer events
#   ``upi.vpa`` too); the name on the card (``card.name``). Left: the card's ``last4``,
#   ``iin``, network, issuer and type (they name a card among millions, not a person; PCI
#   DSS allows keeping the first six and last four digits, and a dispute names the card by
#   them), ``upi.payer_account_type``, the bank's references in ``acquirer_data``.
# - payment_link: its ``customer`` (name, e-mail, mobile). Its ``notify`` says only
#   whether a mail or text was sent (``notify.email`` is a flag, not an address).
# - order, refund: nothing of the payer (amounts, statuses, the bank's ARN).
# ``notes`` are left on every entity: the portal writes only its own references into them
# (the visit's number, our payment, refund or payout ids, ``portal/booking/checkout.py``,
# ``links.py``, ``refunds/execute.py``), which processing reads to find our rows.
PERSONAL = {
    "payment": ("email", "contact", "vpa", "upi.vpa", "card.name"),
    "payment_link": ("customer",),
}

# Objects that are someone's bank account, wherever they stand in an event: a fund
# account's, or a payer's (a bank transfer's).
BANK_ACCOUNTS = ("bank_account", "payer_bank_account")


def for_storage(payload):
    """The event as it is stored: a copy with every bank account number cut to its last
    four digits and every fund account's UPI id masked (see the module's docstring)."""
    payload = copy.deepcopy(payload)
    mask_bank_details(payload)
    return payload


def mask_bank_details(payload):
    """Mask, in place, the bank account numbers and fund account UPI ids anywhere in an
    event. True when something changed (a masked event is left as it is)."""
    changed = False
    stack = [(None, payload)]
    while stack:  # not recursive: an event is at most 16 deep (webhook_shapes)
        key, node = stack.pop()
        if isinstance(node, list):
            stack.extend((None, item) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        if key in BANK_ACCOUNTS:
            changed |= _replace(node, "account_number", mask_account_number)
        elif key == "vpa":  # RazorpayX's fund account: {username, handle, address}
            changed |= _replace(node, "address", mask_vpa)
            changed |= _replace(node, "username", mask_vpa_user)
        stack.extend(node.items())
    return changed


def _replace(node, name, mask):
    value = node.get(name)
    if not isinstance(value, str | int) or isinstance(value, bool):
        return False
    masked = mask(str(value))
    if masked == value:
        return False
    node[name] = masked
    return True


def erase_personal(kind, entity):
    """Remove, in place, the ``PERSONAL`` fields of one entity of kind ``kind`` (the key
    it stands under in an event's ``payload``). True when something was removed."""
    removed = False
    for path in PERSONAL.get(kind, ()):
        *parents, name = path.split(".")
        node = entity
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if isinstance(node, dict) and name in node:
            del node[name]
            removed = True
    return removed


def erase_from_event(payload):
    """``erase_personal`` on every entity of an event. True when something was removed."""
    removed = False
    for kind, part in ((payload or {}).get("payload") or {}).items():
        entity = part.get("entity") if isinstance(part, dict) else None
        if isinstance(entity, dict):
            removed |= erase_personal(kind, entity)
    return removed


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
        if erase_from_event(event.payload):
            flag_modified(event, "payload")
            changed += 1
    db.session.flush()
    return changed
