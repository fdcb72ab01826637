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
# Their idempotency keys: ``settlement:<razorpay id>`` and ``…:adjustments``
SETTLEMENT_KEY = "settlement:"
ADJUSTMENTS_SUFFIX = ":adjustments"


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


def _clearing_by_key(kind) -> dict[str | None, int]:
    """Idempotency key -> debits − credits of gateway_clearing, for the transactions of
    ``kind`` (those posted without a key summed under None)."""
    rows = db.session.execute(
        sa.select(LedgerTransaction.idempotency_key, sa.func.sum(LedgerEntry.amount))
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.code == GATEWAY_CLEARING, LedgerTransaction.kind == kind)
        .group_by(LedgerTransaction.idempotency_key)
    )
    out: dict[str | None, int] = {}
    for key, amount in rows:
        out[key] = out.get(key, 0) + int(amount)
    return out


def _settlement_id(key, suffix=""):
    """``settlement:<id><suffix>`` -> id, else None."""
    if not key or not key.startswith(SETTLEMENT_KEY) or not key.endswith(suffix):
        return None
    rid = key[len(SETTLEMENT_KEY) : len(key) - len(suffix)]
    return rid if rid and ":" not in rid else None


def verify_settlement_postings(position) -> list[str]:
    """Each settlement the ledger posted, compared by its Razorpay id with the gateway's.

    ``position["settlements"]`` is the gateway's processed settlements, id -> gross paise
    (amount + fees: what left its hold for us). A ``gateway_settlement`` posting
    (``settlement:<id>``) must name one of them and take exactly its gross out of gateway
    clearing. Its transfers and adjustments (``settlement:<id>:adjustments``) must belong
    to a settlement the gateway made and the ledger posted, and, when
    ``position["adjustments"]`` (id -> the signed total of the settlement's recon rows other
    than payments and refunds, for the settlements whose rows are complete) is given, post
    that total: a complete settlement's adjustments posted for another amount, or not at
    all, are findings. A settlement the gateway made that the ledger has not posted yet is
    none (the next ingest posts it)."""
    gateway = {str(k): int(v) for k, v in position["settlements"].items()}
    problems = []
    posted = {}
    for key, clearing in sorted(
        _clearing_by_key(SETTLEMENT_KIND).items(), key=lambda kv: str(kv[0])
    ):
        rid = _settlement_id(key)
        if rid is None:
            problems.append(
                f"a settlement posting took {-clearing} paise out of gateway clearing with no "
                f"settlement id to compare with the gateway's (key {key!r})"
            )
            continue
        posted[rid] = -clearing
        if rid not in gateway:
            problems.append(
                f"settlement {rid}: the ledger posted {-clearing} paise out of gateway "
                "clearing, but the gateway has no processed settlement of that id"
            )
        elif gateway[rid] != -clearing:
            problems.append(
                f"settlement {rid}: the ledger posted {-clearing} paise out of gateway "
                f"clearing, the gateway settled {gateway[rid]} (amount + fees): "
                f"{-clearing - gateway[rid]:+d} paise"
            )
    recon = position.get("adjustments")
    adjusted = {}
    for key, clearing in sorted(
        _clearing_by_key(SETTLEMENT_ADJUSTMENTS_KIND).items(), key=lambda kv: str(kv[0])
    ):
        rid = _settlement_id(key, ADJUSTMENTS_SUFFIX)
        if rid is None:
            problems.append(
                f"settlement adjustments of {clearing:+d} paise were posted to gateway "
                f"clearing with no settlement id (key {key!r})"
            )
            continue
        adjusted[rid] = clearing
        if rid not in gateway or rid not in posted:
            problems.append(
                f"settlement {rid}: the ledger posted {clearing:+d} paise of transfers and "
                "adjustments, but "
                + (
                    "the gateway has no processed settlement of that id"
                    if rid not in gateway
                    else "the settlement itself is not posted"
                )
            )
        elif recon is not None and rid not in recon:
            problems.append(
                f"settlement {rid}: the ledger posted {clearing:+d} paise of transfers and "
                "adjustments, but its recon rows are not complete (or not stored)"
            )
        elif recon is not None and int(recon[rid]) != clearing:
            problems.append(
                f"settlement {rid}: the ledger posted {clearing:+d} paise of transfers and "
                f"adjustments, its recon rows say {int(recon[rid]):+d}"
            )
    for rid, total in sorted((recon or {}).items()):
        if int(total) and rid not in adjusted and rid in posted:
            problems.append(
                f"settlement {rid}: its recon rows adjust {int(total):+d} paise (transfers, "
                "adjustments), the ledger posted none (flask settlements post-adjustments)"
            )
    return problems


def verify_gateway_clearing(position) -> list[str]:
    """Gateway clearing in the ledger against what the gateway says it holds for us.

    ``position`` is the gateway's own ``{"captured", "refunded", "settled"}`` paise and its
    processed ``"settlements"`` by id (from its list APIs: ``RazorpayPayIn.account_position``),
    with the ``"adjustments"`` of the settlements whose recon rows are complete, by id.
    Settlements first, by id (``verify_settlement_postings``): in the sum below ``settled``
    cancels out (what the gateway settled is in what it no longer holds and in what the
    ledger has still to post), so a settlement posting of a wrong amount, or of one the
    gateway never made, shows only there (review finding).

    Then the sum. The gateway holds captured − refunded − settled, where a settlement's
    gross (``settled``) also counts its transfers and adjustments, which those lists know
    nothing of: a chargeback taken is money the gateway holds no more, yet lowers the
    gross. So they are added back as posted (the ledger's ``settlement_adjustments``
    postings, negative for a debit; compared with the recon rows above). The ledger's
    clearing must equal that plus any settlement the ledger has not posted yet. A capture
    posted without the gateway holding it (a forged event) shows here; so does one the
    gateway holds that the portal never recorded."""
    problems = verify_settlement_postings(position)
    captured, refunded, settled = (int(position[k]) for k in ("captured", "refunded", "settled"))
    adjusted = _clearing_posted_by(SETTLEMENT_ADJUSTMENTS_KIND)
    holds = captured - refunded - settled + adjusted
    posted = -_clearing_posted_by(SETTLEMENT_KIND)
    unposted = settled - posted
    clearing = balance(GATEWAY_CLEARING)
    if clearing == holds + unposted:
        return problems
    return problems + [
        f"gateway clearing is {clearing} paise in the ledger, but the gateway holds {holds} "
        f"for us (captured {captured} − refunded {refunded} − settled {settled}"
        + (f", {adjusted:+d} its settlements' transfers and adjustments" if adjusted else "")
        + ")"
        + (f" and {unposted} of its settlements are not posted" if unposted else "")
        + f": {clearing - holds - unposted:+d} paise unexplained (a capture or refund the "
        "other side does not know; events still on their way explain a passing difference)"
    ]
