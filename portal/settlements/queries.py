"""What the settlement pages list and show."""

import sqlalchemy as sa

from portal.extensions import db
from portal.pagination import Order, keyset_page

from . import checks
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


def recon_adjustments() -> dict[str, int]:
    """Razorpay id -> the signed total of its transfers and adjustments
    (``checks.adjusted``), for every stored settlement whose recon rows are complete (0
    when it has none): what its ``settlement:<id>:adjustments`` posting must move, for
    ``flask ledger check`` (``ledger.check.verify_settlement_postings``)."""
    totals = dict.fromkeys(
        db.session.scalars(
            sa.select(Settlement.razorpay_settlement_id).where(Settlement.rows_complete.is_(True))
        ),
        0,
    )
    rows = db.session.execute(
        sa.select(
            Settlement.razorpay_settlement_id,
            SettlementItem.entity_type,
            SettlementItem.amount,
            SettlementItem.credit,
            SettlementItem.debit,
        )
        .join(SettlementItem, SettlementItem.settlement_id == Settlement.id)
        .where(
            Settlement.rows_complete.is_(True),
            SettlementItem.entity_type.not_in((checks.PAYMENT, checks.REFUND)),
        )
    )
    for rid, kind, amount, credit, debit in rows:
        totals[rid] += checks.adjusted([(kind, checks.signed_amount(kind, amount, credit, debit))])
    return totals
