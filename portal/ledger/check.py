"""Integrity check of the ledger: ``verify_ledger()`` returns a list of problems (empty
when all is well). Balances are not cached anywhere -- every balance is a sum of
entries -- so there is no stored balance to compare."""

from __future__ import annotations

import sqlalchemy as sa

from portal.extensions import db

from .accounts import DEBIT_NORMAL, GATEWAY_CLEARING, PATIENT_WALLET, describe
from .models import LedgerAccount, LedgerEntry, LedgerTransaction
from .service import balance

SETTLEMENT_KIND = "gateway_settlement"  # a settlement posted out of gateway_clearing
# A settlement's rows other than payments and refunds (transfers, adjustments), posted
# between gateway_clearing and gateway_adjustments once its recon rows are complete
SETTLEMENT_ADJUSTMENTS_KIND = "settlement_adjustments"


def verify_ledger() -> list[str]:
    problems: list[str] = []

    unbalanced = db.session.execute(
        sa.select(LedgerEntry.transaction_id, sa.func.sum(LedgerEntry.amount))
        .group_by(LedgerEntry.transaction_id)
        .having(sa.func.sum(LedgerEntry.amount) != 0)
        .order_by(LedgerEntry.transaction_id)
    )
    for txn_id, total in unbalanced:
        problems.append(f"transaction {txn_id} does not balance: debits − credits = {total} paise")

    counts = (
        sa.select(LedgerEntry.transaction_id, sa.func.count().label("n"))
        .group_by(LedgerEntry.transaction_id)
        .subquery()
    )
    thin = db.session.execute(
        sa.select(LedgerTransaction.id, sa.func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.transaction_id == LedgerTransaction.id)
        .where(sa.func.coalesce(counts.c.n, 0) < 2)
        .order_by(LedgerTransaction.id)
    )
    for txn_id, n in thin:
        problems.append(
            f"transaction {txn_id} has {n} entr{'y' if n == 1 else 'ies'} (needs at least 2)"
        )

    zero = db.session.scalar(sa.select(sa.func.count()).where(LedgerEntry.amount == 0))
    if zero:
        problems.append(f"{zero} entries have a zero amount")

    for account in db.session.scalars(sa.select(LedgerAccount).order_by(LedgerAccount.code)):
        try:
            kind, owner_type, owner_id = describe(account.code)
        except ValueError:
            problems.append(f"account {account.code} is not in the chart of accounts")
            continue
        if account.kind != kind:
            problems.append(
                f"account {account.code} has kind {account.kind}, the chart says {kind}"
            )

    wallets = db.session.execute(
        sa.select(LedgerAccount.code, LedgerAccount.kind, sa.func.sum(LedgerEntry.amount))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.code.startswith(PATIENT_WALLET + ":"))
        .group_by(LedgerAccount.code, LedgerAccount.kind)
    )
    for code, kind, raw in wallets:
        normal = int(raw) if kind in DEBIT_NORMAL else -int(raw)
        if normal < 0:
            problems.append(f"wallet {code} is below zero: {normal} paise")

    grand_total = db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0)))
    if grand_total:
        problems.append(f"all entries together sum to {grand_total} paise, not 0")
    return problems


def _clearing_posted_by(kind) -> int:
    """Debits − credits of gateway_clearing in the transactions of ``kind``."""
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0))
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
            .where(LedgerAccount.code == GATEWAY_CLEARING, LedgerTransaction.kind == kind)
        )
    )


def verify_gateway_clearing(position) -> list[str]:
    """Gateway clearing in the ledger against what the gateway says it holds for us.

    ``position`` is the gateway's own ``{"captured", "refunded", "settled"}`` paise (from
    its list APIs: ``RazorpayPayIn.account_position``). It holds captured − refunded −
    settled, where a settlement's gross (``settled``) also counts its transfers and
    adjustments, which those lists know nothing of: a chargeback taken is money the
    gateway holds no more, yet lowers the gross. So they are added back as the recon rows
    say (the ledger's ``settlement_adjustments`` postings, negative for a debit). The
    ledger's clearing must equal that plus any settlement the ledger has not posted yet. A
    capture posted without the gateway holding it (a forged event) shows here; so does one
    the gateway holds that the portal never recorded."""
    captured, refunded, settled = (int(position[k]) for k in ("captured", "refunded", "settled"))
    adjusted = _clearing_posted_by(SETTLEMENT_ADJUSTMENTS_KIND)
    holds = captured - refunded - settled + adjusted
    posted = -_clearing_posted_by(SETTLEMENT_KIND)
    unposted = settled - posted
    clearing = balance(GATEWAY_CLEARING)
    if clearing == holds + unposted:
        return []
    return [
        f"gateway clearing is {clearing} paise in the ledger, but the gateway holds {holds} "
        f"for us (captured {captured} − refunded {refunded} − settled {settled}"
        + (f", {adjusted:+d} its settlements' transfers and adjustments" if adjusted else "")
        + ")"
        + (f" and {unposted} of its settlements are not posted" if unposted else "")
        + f": {clearing - holds - unposted:+d} paise unexplained (a capture or refund the "
        "other side does not know; events still on their way explain a passing difference)"
    ]
