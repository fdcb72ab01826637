"""webhook_event: bank details masked in the events stored before; a closed account's
nested details erased

Revision ID: whmask000001
Revises: feedoc000001
Create Date: 2026-12-09 10:00:00

Review rv_privacy. Events are now stored with every bank account number cut to its last
four digits and a fund account's UPI id masked (``gateway.scrub.for_storage``); the ones
stored before kept RazorpayX's ``fund_account.validation.*`` whole, a provider's full
account number and UPI id included. Here each stored event that may hold one (its JSON
names a ``…bank_account`` or a ``fund_account``) is masked the same way, by a frozen copy of the same
function (a masked event is left as it is).

And a closure now erases a payment's nested details too (``card.name``, ``upi.vpa``):
the events of accounts closed before lost only the top-level e-mail, mobile and UPI id.
Razorpay's payment entity always carries ``email`` and ``contact`` (null when none), so a
payment entity with neither was one a closure erased: its nested details are erased
here (``gateway.scrub.erase_personal``). Found by the JSON naming a ``card`` or ``upi``.

The rows are read 500 at a time, by id, on both PostgreSQL and SQLite (the JSON is read
as text for the filter). Downgrade changes nothing: what was masked or erased is gone.
"""

import sqlalchemy as sa
from alembic import op


revision = "whmask000001"
down_revision = "feedoc000001"
branch_labels = None
depends_on = None

BATCH = 500
MAYBE = ('bank_account"', "fund_account", '"card"', '"upi"')

events = sa.table(
    "webhook_event",
    sa.column("id", sa.Integer),
    sa.column("payload", sa.JSON),
)

# A frozen copy of what ``gateway.scrub`` and ``domain.bank_details`` did on the day this
# migration was written (as every migration here: it must run the same on a database
# upgraded years from now, whatever those modules become).
MASK = "\u2022"
BANK_ACCOUNTS = ("bank_account", "payer_bank_account")
PERSONAL = {"payment": ("email", "contact", "vpa", "upi.vpa", "card.name")}


def _mask_account_number(number):
    return MASK * 4 + str(number)[-4:]


def _mask_vpa_user(user):
    return user[:2] + MASK * max(len(user) - 2, 1)


def _mask_vpa(vpa):
    user, _, handle = vpa.partition("@")
    return f"{_mask_vpa_user(user)}@{handle}"


def _replace(node, name, mask):
    value = node.get(name)
    if not isinstance(value, str | int) or isinstance(value, bool):
        return False
    masked = mask(str(value))
    if masked == value:
        return False
    node[name] = masked
    return True


def _mask_bank_details(payload):
    changed = False
    stack = [(None, payload)]
    while stack:
        key, node = stack.pop()
        if isinstance(node, list):
            stack.extend((None, item) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        if key in BANK_ACCOUNTS:
            changed |= _replace(node, "account_number", _mask_account_number)
        elif key == "vpa":
            changed |= _replace(node, "address", _mask_vpa)
            changed |= _replace(node, "username", _mask_vpa_user)
        stack.extend(node.items())
    return changed


def _erase_personal(kind, entity):
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


def _erased_by_a_closure(payload):
    """Erase the nested details of each payment entity a closure erased before."""
    removed = False
    for kind, part in ((payload or {}).get("payload") or {}).items():
        entity = part.get("entity") if isinstance(part, dict) else None
        if kind == "payment" and isinstance(entity, dict):
            if "email" not in entity and "contact" not in entity:
                removed |= _erase_personal(kind, entity)
    return removed


def upgrade():
    conn = op.get_bind()
    text = sa.cast(events.c.payload, sa.Text)
    maybe = sa.or_(*(text.like(f"%{part}%") for part in MAYBE))
    last = 0
    while True:
        rows = conn.execute(
            sa.select(events.c.id, events.c.payload)
            .where(maybe, events.c.id > last)
            .order_by(events.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        for row_id, payload in rows:
            changed = _mask_bank_details(payload)
            changed |= _erased_by_a_closure(payload)
            if changed:
                conn.execute(
                    sa.update(events).where(events.c.id == row_id).values(payload=payload)
                )
        last = rows[-1][0]


def downgrade():
    pass  # nothing to restore: the full numbers and the erased details are not kept
