"""Real concurrency on PostgreSQL: the database, not Python, keeps the ledger right."""

import threading
import time

import pytest
import sqlalchemy as sa

import portal.ledger.models  # noqa: F401
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerTransaction
from portal.ledger.service import InsufficientBalance, balance, credit, debit, post
from tests.threads import lock_waiters, run_together

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


def test_two_use_cases_making_the_same_new_accounts_in_turn_never_deadlock(pg_app):
    """Two use cases each post twice, to the payables of two providers with none yet (a
    brand-new ledger's accounts, or a new provider's): A to P1 then P2, B to P2 then P1.
    Made inside the use case, each new account was an uncommitted row the other's
    posting to it waited on: B waited for A's P1, then A for B's P2, and PostgreSQL's
    deadlock detector aborted one (40P01, a 500). Forced here by holding A until B
    waits. Both must post."""
    p1, p2 = chart.provider_payable(101), chart.provider_payable(102)
    with pg_app.app_context():
        post("seed", [debit(chart.BANK, 1), credit(chart.PENALTY_REVENUE, 1)])
        db.session.commit()
    a_posted, b_posted = threading.Event(), threading.Event()

    def pay(code):
        post("penalty", [debit(code, 100), credit(chart.PENALTY_REVENUE, 100)])

    def a():
        try:
            pay(p1)
        finally:
            a_posted.set()
        # On until B waits for something of A's, or has posted both without waiting.
        deadline = time.monotonic() + 10
        while not b_posted.is_set() and not lock_waiters(db.engine):
            assert time.monotonic() < deadline, "B neither waited nor posted"
            time.sleep(0.01)
        pay(p2)
        db.session.commit()
        return "posted"

    def b():
        a_posted.wait(10)
        pay(p2)
        pay(p1)
        b_posted.set()
        db.session.commit()
        return "posted"

    outcomes = run_together(pg_app, a, b)
    assert outcomes == ["posted", "posted"], outcomes
    with pg_app.app_context():
        assert balance(p1) == balance(p2) == -200
