"""What the wallet adjustment pages list and show (read only, keyset pages)."""

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from portal.db import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.pagination import Order, keyset_page
from portal.wallet.models import WalletAdjustment

ORDER = (
    Order(WalletAdjustment.created_at, descending=True),
    Order(WalletAdjustment.id, descending=True),
)
ROW = (
    joinedload(WalletAdjustment.patient),
    joinedload(WalletAdjustment.created_by),
    joinedload(WalletAdjustment.decided_by),
)


def adjustments_page(*, patient_id=None, status=None, after=None, before=None, per_page=30):
    """Adjustments newest first, of one wallet and/or one status."""
    query = sa.select(WalletAdjustment)
    if patient_id is not None:
        query = query.where(WalletAdjustment.patient_id == patient_id)
    if status:
        query = query.where(WalletAdjustment.status == status)
    return keyset_page(query, ORDER, after=after, before=before, per_page=per_page, options=ROW)


def adjustment(adjustment_id):
    return db.session.scalar(
        sa.select(WalletAdjustment).where(WalletAdjustment.id == adjustment_id).options(*ROW)
    )


def wallet_balance(patient_id):
    return balance(chart.patient_wallet(patient_id))
