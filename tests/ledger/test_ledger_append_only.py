"""POLICY.md: every movement is a balanced ledger transaction; a correction is a reversing
one. Review finding: the ledger's only guard was the ORM's ``before_update`` /
``before_delete`` mapper events, which fire for a unit-of-work flush only: a bulk
``update(LedgerEntry)`` or ``delete(LedgerTransaction)`` through the session, or plain SQL,
rewrote or removed money history. Now the session refuses a bulk UPDATE or DELETE of
``ledger_transactions`` and ``ledger_entries``, and on PostgreSQL a trigger refuses every
UPDATE, DELETE and TRUNCATE of them, whoever sends it (portal/append_only.py)."""

import pytest
import sqlalchemy as sa

from portal.append_only import AppendOnly
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.check import verify_ledger
from portal.ledger.models import LedgerEntry, LedgerTransaction
from portal.ledger.service import credit, debit, post
from tests.plugin import empty_tables

WALLET = chart.patient_wallet(7)


def _posted():
    txn = post(
        "payment_captured",
        [debit(chart.GATEWAY_CLEARING, 105_900), credit(WALLET, 105_900)],
        reference=("payment", 1),
        idempotency_key="capture:1",
        memo="captured",
    )
    db.session.commit()
    return txn.id


def _as_posted(txn_id):
    """The transaction as the database holds it: kind, memo and its entries' amounts."""
    db.session.rollback()
    txn = db.session.get(LedgerTransaction, txn_id, populate_existing=True)
    assert txn is not None, "a ledger transaction was removed"
    amounts = db.session.scalars(
        sa.select(LedgerEntry.amount)
        .where(LedgerEntry.transaction_id == txn_id)
        .order_by(LedgerEntry.id)
    ).all()
    return txn.kind, txn.memo, amounts


POSTED = ("payment_captured", "captured", [105_900, -105_900])


@pytest.fixture
def txn_id(ctx):
    return _posted()


def _bulk_statements(txn_id):
    entries, txns = LedgerEntry.__table__, LedgerTransaction.__table__
    return [
        lambda: db.session.execute(
            sa.update(LedgerEntry).where(LedgerEntry.transaction_id == txn_id).values(amount=1)
        ),
        lambda: db.session.execute(
            sa.update(LedgerTransaction).where(LedgerTransaction.id == txn_id).values(memo="x")
        ),
        lambda: db.session.execute(sa.delete(LedgerEntry)),
        lambda: db.session.execute(sa.delete(LedgerTransaction)),
        lambda: db.session.execute(sa.update(entries).values(amount=sa.literal(1))),
        lambda: db.session.execute(sa.delete(txns)),
        lambda: db.session.query(LedgerEntry).update({"amount": 2}),
        lambda: db.session.query(LedgerEntry).delete(),
        lambda: db.session.query(LedgerTransaction).delete(),
    ]


@pytest.mark.parametrize("index", range(9))
def test_a_bulk_update_or_delete_through_the_session_is_refused(txn_id, index):
    with pytest.raises(AppendOnly, match="ledger is append-only"):
        _bulk_statements(txn_id)[index]()
        db.session.commit()
    assert _as_posted(txn_id) == POSTED
    assert verify_ledger() == []


def test_a_flush_is_still_refused(txn_id):
    entry = db.session.scalars(
        sa.select(LedgerEntry).where(LedgerEntry.transaction_id == txn_id)
    ).first()
    entry.amount = 1
    with pytest.raises(AppendOnly):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.get(LedgerTransaction, txn_id))
    with pytest.raises(AppendOnly):
        db.session.flush()
    assert _as_posted(txn_id) == POSTED


@pytest.fixture
def pg_txn(pg_app):
    with pg_app.app_context():
        yield _posted()
        db.session.remove()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_entries SET amount = amount * 2 WHERE transaction_id = :id",
        "UPDATE ledger_entries SET account_id = account_id WHERE transaction_id = :id",
        "UPDATE ledger_transactions SET memo = 'rewritten' WHERE id = :id",
        "UPDATE ledger_transactions SET created_at = created_at - interval '1 day'",
        "DELETE FROM ledger_entries WHERE transaction_id = :id",
        "DELETE FROM ledger_transactions WHERE id = :id",
        "TRUNCATE ledger_entries",
        "TRUNCATE ledger_transactions CASCADE",
    ],
)
def test_the_database_refuses_to_rewrite_money_history(pg_txn, sql):
    """PostgreSQL: the trigger, for whatever sends the statement (plain SQL here); an
    UPDATE that changes nothing is refused too (no column of the ledger may change)."""
    with pytest.raises(sa.exc.DBAPIError, match="ledger_(entries|transactions) is append-only"):
        db.session.execute(sa.text(sql), {"id": pg_txn})
        db.session.commit()
    assert _as_posted(pg_txn) == POSTED


@pytest.mark.postgres
def test_a_core_connection_outside_the_session_is_refused_too(pg_txn):
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with db.engine.begin() as conn:
            conn.execute(sa.delete(LedgerEntry.__table__))
    assert _as_posted(pg_txn) == POSTED


@pytest.mark.postgres
def test_the_test_reset_empties_the_ledger_past_the_trigger(pg_app, pg_txn):
    empty_tables(pg_app)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerTransaction)) == 0
