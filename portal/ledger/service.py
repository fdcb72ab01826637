"""Posting balanced transactions and reading balances.

Lines are ``(account_code, amount)`` with the amount in paise, **debit positive, credit
negative**; build them with :func:`debit` / :func:`credit` for legibility::

    post("payment_captured",
         [debit(GATEWAY_CLEARING, 105_900),
          credit(UNEARNED_FEES, 100_000), credit(PLATFORM_REVENUE, 5_000),
          credit(GST_PAYABLE, 900)],
         reference=("payment", payment.id), idempotency_key=f"capture:{payment.id}")

The caller's unit of work (``portal.db.unit_of_work``) owns the transaction; ``post`` only
flushes, inside a SAVEPOINT so a duplicate idempotency key rolls back just the posting.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import NamedTuple

import sqlalchemy as sa
from flask import current_app, g, has_request_context
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from portal.db import insert_for, savepoint, utcnow
from portal.extensions import db
from portal.pg_dialect import read_committed

from . import accounts as chart
from .accounts import DEBIT_NORMAL, describe, patient_wallet, provider_payable  # noqa: F401
from .models import LedgerAccount, LedgerEntry, LedgerTransaction

__all__ = [
    "Line",
    "debit",
    "credit",
    "post",
    "reverse",
    "balance",
    "raw_balance",
    "balances",
    "get_account",
    "ensure_account",
    "LedgerError",
    "UnbalancedTransaction",
    "EmptyTransaction",
    "IdempotencyConflict",
    "InsufficientBalance",
    "patient_wallet",
    "provider_payable",
]


class LedgerError(Exception):
    pass


class UnbalancedTransaction(LedgerError):
    pass


class EmptyTransaction(LedgerError):
    pass


class IdempotencyConflict(LedgerError):
    """The key was used before for a different posting (a bug in the caller)."""


class InsufficientBalance(LedgerError):
    def __init__(self, code: str, balance: int):
        self.code = code
        self.balance = balance
        super().__init__(f"{code} would go below zero ({balance} paise)")


class Line(NamedTuple):
    account_code: str
    amount: int  # paise; debit > 0, credit < 0


def debit(account_code: str, amount: int) -> Line:
    """A debit of ``amount`` (>= 0) paise."""
    _check_amount(amount, allow_negative=False)
    return Line(account_code, amount)


def credit(account_code: str, amount: int) -> Line:
    """A credit of ``amount`` (>= 0) paise."""
    _check_amount(amount, allow_negative=False)
    return Line(account_code, -amount)


def _check_amount(amount, allow_negative=True):
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise TypeError(f"ledger amounts are int paise, got {type(amount).__name__}")
    if not allow_negative and amount < 0:
        raise ValueError("use debit()/credit() with a non-negative amount")


def _normalise_lines(lines) -> list[Line]:
    out = []
    for line in lines:
        code, amount = line
        if not isinstance(code, str) or not code:
            raise LedgerError(f"bad account code {code!r}")
        describe(code)  # unknown codes are refused before anything is written
        _check_amount(amount)
        if amount != 0:  # zero lines (e.g. no GST) are dropped
            out.append(Line(code, amount))
    if not out:
        raise EmptyTransaction("a transaction needs at least one non-zero line")
    total = sum(line.amount for line in out)
    if total != 0:
        raise UnbalancedTransaction(f"debits and credits differ by {total} paise")
    return out


def _signature(lines: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    return sorted((code, amount) for code, amount in lines)


def get_account(code: str) -> LedgerAccount | None:
    return db.session.scalar(sa.select(LedgerAccount).where(LedgerAccount.code == code))


def ensure_account(code: str) -> LedgerAccount:
    """The account with this code, created (kind and owner from the chart) if missing."""
    return ensure_accounts([code])[code]


def ensure_accounts(codes) -> dict[str, LedgerAccount]:
    """The accounts with these codes, by code: the existing ones in one query (a posting
    names three or four accounts, which almost always exist), the missing ones created
    from the chart (``_create``) and read back."""
    codes = sorted(set(codes))
    found = _by_codes(codes)
    missing = [code for code in codes if code not in found]
    if missing:
        _create(missing)
        found |= _by_codes(missing)
    return found


def _by_codes(codes) -> dict[str, LedgerAccount]:
    return {
        a.code: a
        for a in db.session.scalars(sa.select(LedgerAccount).where(LedgerAccount.code.in_(codes)))
    }


def _create(codes: list[str]) -> None:
    """Insert the chart's rows for ``codes`` (sorted), a concurrent creation absorbed
    (``ON CONFLICT DO NOTHING``).

    PostgreSQL at READ COMMITTED: committed at once, on a connection of its own
    (docs/decisions.md, "Ledger accounts are made outside the use case"). Made inside the
    use case, a new account was an uncommitted row that any other posting to it waited on
    until the use case ended, and two use cases making accounts the other then posts to (a
    brand-new ledger's, a new provider's) deadlocked (40P01, a 500). An account is the
    chart, not money: one left by a use case that then rolled back is an empty account, as
    any unused one. Elsewhere in the transaction (``_made_apart``)."""
    rows = []
    for code in codes:
        kind, owner_type, owner_id = describe(code)
        rows.append(
            {
                "code": code,
                "kind": kind,
                "owner_type": owner_type,
                "owner_id": owner_id,
                "created_at": utcnow(),
            }
        )
    engine = db.engine
    statement = (
        insert_for(engine.dialect.name)(LedgerAccount.__table__)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["code"])
    )
    if not _made_apart():
        db.session.execute(statement)
        return
    with _chart_engine().begin() as conn:
        conn.execute(statement)


def _made_apart():
    """Whether ``_create`` commits on a connection of its own: on PostgreSQL at READ
    COMMITTED, the session on the app's engine. Not on SQLite (one writer at a time: a
    second connection would wait for this one's write lock); not at a stricter level,
    whose snapshot, taken at the use case's first read, would not see the account made
    after it; not for a session joined to one connection's transaction (the tests'
    ``rollback``, whose accounts must go with it)."""
    bind = db.session.get_bind()
    if not isinstance(bind, sa.Engine) or bind.dialect.name != "postgresql":
        return False
    return read_committed(db.session.connection())


def _chart_engine():
    """The engine ``_create`` commits through: the app's database without a pool, so a
    request never waits for a second connection of the app's pool (every one may be held
    by a request in the middle of a posting); it runs once per new account."""
    engines = current_app.extensions.setdefault("ledger_chart_engine", {})
    url = db.engine.url
    if url not in engines:
        engines[url] = sa.create_engine(url, poolclass=NullPool, hide_parameters=True)
    return engines[url]


def _lock(account_ids: list[int]) -> None:
    """Row locks on the accounts (PostgreSQL ``FOR UPDATE``; SQLite serialises writers
    anyway), taken in id order so two postings never deadlock."""
    if account_ids:
        db.session.execute(
            sa.select(LedgerAccount.id)
            .where(LedgerAccount.id.in_(account_ids))
            .order_by(LedgerAccount.id)
            .with_for_update()
        )


def post(
    kind: str,
    lines,
    reference: tuple[str, object] | None = None,
    idempotency_key: str | None = None,
    memo: str | None = None,
    *,
    require_non_negative: Iterable[str] = (),
) -> LedgerTransaction:
    """Post one balanced transaction and return it (flushed, not committed).

    * refuses an empty (:class:`EmptyTransaction`) or unbalanced
      (:class:`UnbalancedTransaction`) set of lines and unknown account codes;
    * creates missing accounts from the chart;
    * with an ``idempotency_key`` already used, posts nothing and returns the existing
      transaction (:class:`IdempotencyConflict` if that one has different lines); the
      database's unique constraint decides a race, inside a SAVEPOINT;
    * ``require_non_negative``: account codes whose normal-side balance must not go below
      zero after the posting (e.g. a wallet being debited); their rows are locked first
      and :class:`InsufficientBalance` is raised with nothing posted.
    """
    if not kind:
        raise LedgerError("a transaction needs a kind")
    _forget_kept()
    normalised = _normalise_lines(lines)
    if idempotency_key is not None:
        existing = _by_key(idempotency_key)
        if existing is not None:
            return _same_or_conflict(existing, kind, normalised)
    ref_type, ref_id = reference if reference is not None else (None, None)
    guarded = sorted(set(require_non_negative))
    accounts = ensure_accounts([line.account_code for line in normalised] + guarded)
    _lock(sorted(accounts[code].id for code in guarded))

    try:
        with savepoint(db.session):
            txn = LedgerTransaction(
                kind=kind,
                reference_type=ref_type,
                reference_id=None if ref_id is None else str(ref_id),
                idempotency_key=idempotency_key,
                memo=memo,
            )
            db.session.add(txn)
            for line in normalised:
                db.session.add(
                    LedgerEntry(
                        transaction=txn, account=accounts[line.account_code], amount=line.amount
                    )
                )
            db.session.flush()
            for code in guarded:
                after = balance(code)
                if after < 0:
                    raise InsufficientBalance(code, after)
    except IntegrityError:
        if idempotency_key is None:
            raise
        existing = _by_key(idempotency_key)
        if existing is None:
            raise
        return _same_or_conflict(existing, kind, normalised)
    return txn


def _by_key(key: str) -> LedgerTransaction | None:
    return db.session.scalar(
        sa.select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key)
    )


def _same_or_conflict(
    existing: LedgerTransaction, kind: str, lines: list[Line]
) -> LedgerTransaction:
    have = _signature((e.account.code, e.amount) for e in existing.entries)
    if existing.kind != kind or have != _signature(lines):
        raise IdempotencyConflict(
            f"idempotency key {existing.idempotency_key!r} already posted a different transaction"
        )
    return existing


def reverse(
    txn: LedgerTransaction,
    kind: str | None = None,
    idempotency_key: str | None = None,
    memo: str | None = None,
) -> LedgerTransaction:
    """Post the mirror image of ``txn`` (every line negated), referencing the same object."""
    return post(
        kind or f"{txn.kind}_reversal",
        [(e.account.code, -e.amount) for e in txn.entries],
        reference=(txn.reference_type, txn.reference_id) if txn.reference_type else None,
        idempotency_key=idempotency_key,
        memo=memo or f"reversal of ledger transaction {txn.id}",
    )


@cache
def _raw_balance():
    """Built once: building the statement and its cache key cost about as much CPU as
    running it (every page showing a wallet reads one)."""
    return (
        sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.code == sa.bindparam("code"))
    )


def raw_balance(account_code: str) -> int:
    """Debits − credits over all entries of the account (0 for an unknown account)."""
    total = db.session.scalar(_raw_balance(), {"code": account_code})
    return int(total or 0)


def balance(account_code: str) -> int:
    """The balance on the account's normal side, in paise: debits − credits for assets and
    expenses, credits − debits for liabilities, revenue and equity. So a patient wallet
    holding ₹100 reads 10_000, and so does ₹100 owed to a provider."""
    kind = describe(account_code)[0]
    raw = raw_balance(account_code)
    return raw if kind in DEBIT_NORMAL else -raw


# Balances a request read as columns of another statement (``balance_column``), kept by
# account code for what its page shows (``shown_balance``). Every posting drops them all,
# so a page never shows a balance its own request has since changed.
_KEPT = "ledger_balances"


def owned_code(prefix: str, owner_id_column):
    """The code of an owner's account (``accounts.patient_wallet`` and the like:
    ``<prefix>:<owner id>``) as an SQL expression of a column holding the owner's id."""
    return sa.literal(f"{prefix}:") + sa.cast(owner_id_column, sa.String)


def balance_column(code_column, kind: str):
    """The normal-side balance (as ``balance``) of the account whose code is
    ``code_column``, an SQL expression, as a column another statement reads with its own;
    ``kind`` is that account's kind (its sign)."""
    raw = (
        sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.code == code_column)
        .scalar_subquery()
    )
    return raw if kind in DEBIT_NORMAL else -raw


def keep_balance(account_code: str, value) -> None:
    """A balance this request read with ``balance_column``: ``shown_balance`` returns it."""
    if has_request_context():
        g.setdefault(_KEPT, {})[account_code] = int(value or 0)


def _forget_kept() -> None:
    if has_request_context():
        g.pop(_KEPT, None)


def shown_balance(account_code: str) -> int:
    """``balance(account_code)`` for a page to show: the value this request already read
    with another statement if it did (``keep_balance``), else read now. Never for a
    decision: a check that money is there reads ``balance`` (under the posting's lock)."""
    kept = g.get(_KEPT) if has_request_context() else None
    if kept and account_code in kept:
        return kept[account_code]
    return balance(account_code)


def balances(codes) -> dict[str, int]:
    """Normal-side balances of the existing accounts among ``codes``, by code: a page reads
    its own rows' accounts, not every account of a kind (their entries grow with the
    ledger)."""
    codes = list(codes)
    if not codes:
        return {}
    rows = db.session.execute(
        sa.select(
            LedgerAccount.code,
            LedgerAccount.kind,
            sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0),
        )
        .outerjoin(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.code.in_(codes))
        .group_by(LedgerAccount.code, LedgerAccount.kind)
    )
    return {code: (int(raw) if kind in DEBIT_NORMAL else -int(raw)) for code, kind, raw in rows}


def entries_for(reference_type: str, reference_id) -> list[LedgerTransaction]:
    """Transactions posted for one object, oldest first."""
    return list(
        db.session.scalars(
            sa.select(LedgerTransaction)
            .where(
                LedgerTransaction.reference_type == reference_type,
                LedgerTransaction.reference_id == str(reference_id),
            )
            .order_by(LedgerTransaction.id)
        )
    )


# Re-export the chart for callers: ``from portal.ledger.service import chart``.
chart = chart
