"""webhook_event: bank details masked in the events stored before; a closed account's
nested details erased

Revision ID: whmask000001
Revises: feedoc000001
Create Date: 2026-12-09 10:00:00

Review rv_privacy. Events are now stored with every bank account number cut to its last
four digits and a fund account's UPI id masked (``gateway.scrub.for_storage``); the ones
stored before kept RazorpayX's ``fund_account.validation.*`` whole, a provider's full
account number and UPI id included. Here each stored event that may hold one (its JSON
names a ``…bank_account`` or a ``fund_account``) is masked the same way, by the same
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

from portal.gateway import scrub

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


def _erased_by_a_closure(payload):
    """Erase the nested details of each payment entity a closure erased before."""
    removed = False
    for kind, part in ((payload or {}).get("payload") or {}).items():
        entity = part.get("entity") if isinstance(part, dict) else None
        if kind == "payment" and isinstance(entity, dict):
            if "email" not in entity and "contact" not in entity:
                removed |= scrub.erase_personal(kind, entity)
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
            changed = scrub.mask_bank_details(payload)
            changed |= _erased_by_a_closure(payload)
            if changed:
                conn.execute(
                    sa.update(events).where(events.c.id == row_id).values(payload=payload)
                )
        last = rows[-1][0]


def downgrade():
    pass  # nothing to restore: the full numbers and the erased details are not kept
