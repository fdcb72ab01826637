"""What the settlement pages list and show."""

import sqlalchemy as sa

from portal.extensions import db
from portal.pagination import Order, keyset_page

from .models import Settlement, SettlementItem

ORDERS = (Order(Settlement.settled_at, descending=True), Order(Settlement.id, descending=True))


def settlements_page(*, after=None, before=None, per_page=20):
    # Each row counts its recon rows and checks they add up: read with the page.
    query = sa.select(Settlement).options(sa.orm.selectinload(Settlement.items))
    return keyset_page(query, ORDERS, after=after, before=before, per_page=per_page)


def settlement(settlement_id):
    return db.session.get(Settlement, settlement_id)


def items_of(settlement_id):
    return db.session.scalars(
        sa.select(SettlementItem)
        .where(SettlementItem.settlement_id == settlement_id)
        .order_by(SettlementItem.created_at, SettlementItem.id)
    ).all()


def items_by_entity(entity_ids):
    """Razorpay id -> its settlement row (with the settlement loaded), for the ids given."""
    ids = sorted({i for i in entity_ids if i})
    if not ids:
        return {}
    rows = db.session.scalars(
        sa.select(SettlementItem)
        .where(SettlementItem.entity_id.in_(ids))
        .options(sa.orm.joinedload(SettlementItem.settlement))
    )
    return {r.entity_id: r for r in rows}


def totals():
    return db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.cast(sa.func.sum(Settlement.amount), sa.BigInteger), 0),
            sa.func.coalesce(sa.cast(sa.func.sum(Settlement.fees), sa.BigInteger), 0),
            sa.func.coalesce(sa.cast(sa.func.sum(Settlement.tax), sa.BigInteger), 0),
        )
    ).one()
