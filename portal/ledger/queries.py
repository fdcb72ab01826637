"""What the ledger pages list (read only): a patient's wallet history and a provider's
payable statement with their running balance, a keyset page at a time."""

from dataclasses import dataclass, replace
from functools import cache

import sqlalchemy as sa

from portal.db import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from portal.pagination import Order, keyset_page

# Newest first; the running balance is summed in the opposite (chronological) order.
HISTORY_ORDER = (
    Order(LedgerTransaction.created_at, descending=True, key=lambda row: row[1].created_at),
    Order(LedgerEntry.id, descending=True, key=lambda row: row[0].id),
)


@dataclass(frozen=True)
class WalletLine:
    at: object
    kind: str
    memo: str | None
    change: int  # paise; a refund into the wallet is positive
    balance: int  # the wallet's balance after this line
    reference_type: str | None = None
    reference_id: str | None = None


@cache
def _account_entries():
    """Built once, the account's code bound (``keyset_page(params=…)``: its page
    statements are then built once too)."""
    return (
        sa.select(LedgerEntry, LedgerTransaction)
        .join(LedgerTransaction, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.code == sa.bindparam("code"))
    )


def wallet_history_page(user_id, *, after=None, before=None, per_page=30):
    """The wallet's movements newest first, each with the balance after it: the page and
    one sum (the balance after its newest line), whatever the page's depth."""
    return account_history_page(
        chart.patient_wallet(user_id), after=after, before=before, per_page=per_page
    )


def account_history_page(code, *, after=None, before=None, per_page=30):
    """The movements of one credit-normal account (a wallet, a provider's payable) newest
    first, each with the account's balance after it (``WalletLine``s): the page and one
    sum, whatever the page's depth."""
    page = keyset_page(
        _account_entries(),
        HISTORY_ORDER,
        after=after,
        before=before,
        per_page=per_page,
        scalars=False,
        params={"code": code},
    )
    if not page.items:
        return page
    top_entry, top_txn = page.items[0]
    # A liability: credits (negative amounts) raise it.
    balance = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(-LedgerEntry.amount), 0))
        .join(LedgerTransaction, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerEntry.account_id == LedgerAccount.id)
        .where(
            LedgerAccount.code == code,
            sa.or_(
                LedgerTransaction.created_at < top_txn.created_at,
                sa.and_(
                    LedgerTransaction.created_at == top_txn.created_at,
                    LedgerEntry.id <= top_entry.id,
                ),
            ),
        )
    )
    balance = int(balance or 0)
    lines = []
    for entry, txn in page.items:
        change = -entry.amount
        lines.append(
            WalletLine(
                at=txn.created_at,
                kind=txn.kind,
                memo=txn.memo,
                change=change,
                balance=balance,
                reference_type=txn.reference_type,
                reference_id=txn.reference_id,
            )
        )
        balance -= change
    return replace(page, items=lines)
