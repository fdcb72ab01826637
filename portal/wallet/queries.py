"""What the wallet adjustment pages list and show (read only, keyset pages)."""

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from portal.db import db
from portal.ledger import accounts as chart
from portal.ledger import service as ledger
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


def shown_balance(patient_id):
    """The patient's wallet balance for a page to show (``ledger.shown_balance``: the value
    read with the signed-in user's statement when the page asked for it, else read now).
    A decision (is the money there?) reads ``booking.prices.wallet_balance`` instead."""
    return ledger.shown_balance(chart.patient_wallet(patient_id))


def balance_column(user_id_column):
    """The wallet balance of the patient whose id is ``user_id_column``, as a column another
    statement reads with its own (portal.web.signed_in reads it with the user)."""
    return ledger.balance_column(
        ledger.owned_code(chart.PATIENT_WALLET, user_id_column),
        chart.PREFIXES[chart.PATIENT_WALLET][0],
    )


def keep_balance(patient_id, value):
    """The balance ``balance_column`` read: this request's ``shown_balance`` returns it."""
    ledger.keep_balance(chart.patient_wallet(patient_id), value)


def pending_adjustments(patient_id):
    """How many adjustments of the patient's wallet wait for a second administrator."""
    return db.session.scalar(
        sa.select(sa.func.count(WalletAdjustment.id)).where(
            WalletAdjustment.patient_id == patient_id,
            WalletAdjustment.status == "PENDING_APPROVAL",
        )
    )
