"""Real concurrency on PostgreSQL: the database, not Python, keeps the ledger right."""

import threading

import pytest
import sqlalchemy as sa

import portal.ledger.models  # noqa: F401
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerTransaction
from portal.ledger.service import InsufficientBalance, balance, credit, debit, post

pytestmark = pytest.mark.postgres
WALLET = chart.patient_wallet(11)


def _race(app, work, n=6):
    barrier = threading.Barrier(n)
    results = []

    def run():
        with app.app_context():
            try:
                barrier.wait()
                outcome = work()
                db.session.commit()
                results.append(outcome)
            except Exception as exc:  # collected and asserted on below
                db.session.rollback()
                results.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_same_idempotency_key_posts_once(pg_app):
    def work():
        return post(
            "payment_captured",
            [debit(chart.GATEWAY_CLEARING, 1_000), credit(chart.UNEARNED_FEES, 1_000)],
            reference=("payment", 9),
            idempotency_key="capture:9",
        ).id

    results = _race(pg_app, work)
    assert all(isinstance(r, int) for r in results), results
    assert len(set(results)) == 1
    with pg_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerTransaction)) == 1
        assert balance(chart.GATEWAY_CLEARING) == 1_000


def test_concurrent_wallet_debits_never_overdraw(pg_app):
    with pg_app.app_context():
        post("topup", [debit(chart.WALLET_ADJUSTMENTS, 1_000), credit(WALLET, 1_000)])
        db.session.commit()

    def work():
        return post(
            "wallet_use",
            [debit(WALLET, 300), credit(chart.UNEARNED_FEES, 300)],
            require_non_negative=[WALLET],
        ).id

    results = _race(pg_app, work)
    ok = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, InsufficientBalance)]
    assert len(ok) == 3 and len(refused) == 3, results
    with pg_app.app_context():
        assert balance(WALLET) == 100
