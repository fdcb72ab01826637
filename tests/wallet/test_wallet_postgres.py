"""Never below zero under concurrent debits, on the real PostgreSQL: the wallet's row lock
(``SELECT … FOR UPDATE``) makes the second debit wait and read the balance the first
left. Also a debit approved while another debit runs. Fails (never skips) without
PostgreSQL."""

import threading

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.check import verify_ledger
from portal.ledger.service import balance
from portal.wallet import adjustments as adj
from portal.wallet.models import WalletAdjustment
from tests.threads import run_together, wait_for_lock_waiters

pytestmark = pytest.mark.postgres

NOTE = "Correcting a duplicated goodwill credit"


@pytest.fixture
def pg_people(pg_app):
    from portal.accounts.passwords import hash_password

    made = {}
    with pg_app.app_context():
        for key, role in (
            ("a1", "admin"),
            ("a2", "admin"),
            ("a3", "admin"),
            ("a4", "admin"),
            ("p", "patient"),
        ):
            user = User(
                email=f"{key}@example.com", name=key, role=role, password_hash=hash_password("x")
            )
            db.session.add(user)
            db.session.commit()
            made[key] = user.id
        db.session.remove()
    return made


def _credit(pg_app, admin_id, patient_id, paise):
    with pg_app.app_context():
        adj.create_adjustment(
            db.session.get(User, admin_id), patient_id, adj.CREDIT, paise, NOTE, "Credit"
        )
        db.session.remove()


def _debit(pg_app, admin_id, patient_id, paise, barrier=None):
    def body():
        if barrier is not None:
            barrier.wait()
        admin = db.session.get(User, admin_id)
        return adj.create_adjustment(admin, patient_id, adj.DEBIT, paise, NOTE, "Debit").status

    return body


def test_two_concurrent_debits_never_take_the_wallet_below_zero(pg_app, pg_people):
    p = pg_people
    _credit(pg_app, p["a3"], p["p"], 5_000_00)
    barrier = threading.Barrier(2)
    results = run_together(
        pg_app,
        _debit(pg_app, p["a1"], p["p"], 3_000_00, barrier),
        _debit(pg_app, p["a2"], p["p"], 3_000_00, barrier),
    )
    applied = [r for r in results if r == "APPLIED"]
    refused = [r for r in results if isinstance(r, adj.AdjustmentError)]
    assert len(applied) == 1 and len(refused) == 1, results
    assert refused[0].errors == {"amount": adj.MSG_INSUFFICIENT}
    with pg_app.app_context():
        assert balance(chart.patient_wallet(p["p"])) == 2_000_00
        rows = db.session.scalars(sa.select(WalletAdjustment).order_by(WalletAdjustment.id)).all()
        assert [(r.balance_before, r.balance_after) for r in rows] == [
            (0, 5_000_00),
            (5_000_00, 2_000_00),
        ]
        assert verify_ledger() == []
        db.session.remove()


def test_the_second_debit_waits_on_the_wallet_lock_and_reads_the_new_balance(pg_app, pg_people):
    """One transaction holds the wallet's lock; a debit started meanwhile blocks (seen in
    pg_stat_activity) and, once the first commits its debit, is refused."""
    p = pg_people
    _credit(pg_app, p["a3"], p["p"], 5_000_00)
    holding, release = threading.Event(), threading.Event()

    def first():
        from portal.db import unit_of_work

        with unit_of_work():
            admin = db.session.get(User, p["a1"])
            done = adj.create_adjustment(admin, p["p"], adj.DEBIT, 4_000_00, NOTE, "Debit")
            holding.set()
            release.wait(10)
        return done.status

    def second():
        holding.wait(10)
        return _debit(pg_app, p["a2"], p["p"], 4_000_00)()

    def watcher():
        holding.wait(10)
        wait_for_lock_waiters(db.engine, 1)
        release.set()

    results = run_together(pg_app, first, second, watcher)
    assert results[0] == "APPLIED", results
    assert isinstance(results[1], adj.AdjustmentError), results
    assert results[1].errors == {"amount": adj.MSG_INSUFFICIENT}
    with pg_app.app_context():
        assert balance(chart.patient_wallet(p["p"])) == 1_000_00
        assert verify_ledger() == []
        db.session.remove()


def test_an_approval_racing_a_debit_never_goes_below_zero(pg_app, pg_people):
    p = pg_people
    _credit(pg_app, p["a3"], p["p"], 9_000_00)
    _credit(pg_app, p["a2"], p["p"], 9_000_00)  # 18,000
    with pg_app.app_context():
        waiting = adj.create_adjustment(
            db.session.get(User, p["a1"]), p["p"], adj.DEBIT, 12_000_00, NOTE, "Debit"
        )
        assert waiting.status == "PENDING_APPROVAL"
        waiting_id = waiting.id
        db.session.remove()
    barrier = threading.Barrier(2)

    def approve():
        barrier.wait()
        return adj.approve_adjustment(db.session.get(User, p["a2"]), waiting_id).status

    results = run_together(pg_app, approve, _debit(pg_app, p["a4"], p["p"], 8_000_00, barrier))
    # 18,000 covers either debit but not both: one applies, the other is refused
    assert sum(r == "APPLIED" for r in results) == 1, results
    with pg_app.app_context():
        left = balance(chart.patient_wallet(p["p"]))
        assert left in (6_000_00, 10_000_00) and left >= 0
        assert verify_ledger() == []
        db.session.remove()


def test_a_wallet_checkout_racing_an_admin_debit_never_spends_the_same_rupee(pg_app):
    """Review r3_races: the patient pays a visit wholly from their wallet while an admin
    debits the same amount from it, both at once. One of them wins; the other is refused
    with its own message (never a database error), and the wallet never goes below zero."""
    import time_machine

    from portal.booking import lookup, prices
    from portal.booking.errors import BookingError
    from tests.booking.factories import (
        NOW,
        build_world,
        credit_wallet,
        held_consult,
        quoted_checkout,
    )

    with time_machine.travel(NOW, tick=True):
        with pg_app.app_context():
            world = build_world()
            item = held_consult(world, 4, 10)
            visit_id, pid = item.master_id, world.patients[0]
            db.session.commit()
            whole = prices.pay_quote(lookup.get_visit(visit_id), 10**9)
            credit_wallet(pid, whole.amount_due + whole.wallet_used)
            total = prices.pay_quote(lookup.get_visit(visit_id), 10**9).wallet_used
            assert total > 0
            db.session.remove()
        barrier = threading.Barrier(2)

        def spend():
            barrier.wait()
            patient = db.session.get(User, pid)
            return quoted_checkout(patient, visit_id, total, callback_url="http://portal.test/cb")

        def debit():
            barrier.wait()
            admin = db.session.get(User, world.admin)
            return adj.create_adjustment(admin, pid, adj.DEBIT, total, NOTE, "Debit").status

        results = run_together(pg_app, spend, debit)
    with pg_app.app_context():
        left = balance(chart.patient_wallet(pid))
        problems = verify_ledger()
        db.session.remove()
    assert left >= 0 and problems == [], (left, problems, results)
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1, results
    assert isinstance(refused[0], (BookingError, adj.AdjustmentError)), results
