"""On PostgreSQL: the same settlement stored by two runs at once (the daily job and "fetch
now") is stored and posted once, and two transactions writing the same movement row at
once both commit (the upsert, not a unique-key failure that would undo a use case)."""

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from portal.db import unit_of_work
from portal.extensions import db
from portal.ledger.check import SETTLEMENT_KIND, verify_ledger
from portal.ledger.models import LedgerTransaction
from portal.settlements.ingest import _store
from portal.settlements.models import Settlement
from portal.transactions.models import MoneyMovement
from portal.transactions.projection import upsert
from tests.threads import run_together

pytestmark = pytest.mark.postgres

RAW = {"id": "setl_RACE1", "amount": 97_000, "fees": 3_000, "tax": 458, "utr": "UTR123",
       "status": "processed"}  # fmt: skip
AT = datetime(2026, 6, 2, 6, 0, tzinfo=UTC)


def test_one_settlement_stored_by_two_runs_at_once_is_stored_and_posted_once(pg_app):
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        return _store(dict(RAW), AT, [], None)

    results = run_together(pg_app, run, run)
    assert sorted(results) == [False, True], results
    with pg_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Settlement)) == 1
        posted = db.session.scalar(
            sa.select(sa.func.count()).where(LedgerTransaction.kind == SETTLEMENT_KIND)
        )
        assert posted == 1 and verify_ledger() == []
        [row] = db.session.scalars(sa.select(MoneyMovement)).all()
        assert (row.reference, row.amount, row.net, row.gateway_fee) == (
            "setl_RACE1",
            100_000,
            97_000,
            3_000,
        )


def test_two_writers_of_one_movement_row_both_commit(pg_app):
    barrier = threading.Barrier(2)
    base = {"source": "payment", "source_id": 42, "type": "payment_online", "failed": False,
            "occurred_at": AT, "amount": 100, "net": 100}  # fmt: skip

    def write(status):
        def body():
            with unit_of_work():
                barrier.wait()
                upsert(db.session, [{**base, "status": status}])
            return status

        return body

    results = run_together(pg_app, write("PENDING"), write("SUCCESSFUL"))
    assert sorted(results) == ["PENDING", "SUCCESSFUL"], results
    with pg_app.app_context():
        [row] = db.session.scalars(sa.select(MoneyMovement)).all()
        assert row.status in ("PENDING", "SUCCESSFUL")


def test_rebuild_while_live_does_not_write_back_a_stale_status(pg_app, monkeypatch):
    """``flask transactions rebuild`` read a record and upserted its row later, in one
    long transaction: a record that changed in between (a ₹15,000 wallet adjustment the
    second admin approved, in a request of its own) had its fresh row overwritten by the
    stale copy, and the console showed PENDING_APPROVAL for good (review finding)."""
    from portal.accounts.models import User
    from portal.accounts.passwords import hash_password
    from portal.domain.states import AdjustmentStatus
    from portal.transactions import projection
    from portal.transactions.cli import transactions_cli
    from portal.wallet import adjustments as adj
    from portal.wallet.models import WalletAdjustment

    with pg_app.app_context():
        people = []
        for role, email in (("admin", "a1@x.in"), ("admin", "a2@x.in"), ("patient", "p@x.in")):
            user = User(email=email, name=email, role=role, password_hash=hash_password("x" * 12))
            db.session.add(user)
            people.append(user)
        db.session.commit()
        ids = [u.id for u in people]
        made = adj.create_adjustment(
            db.session.get(User, ids[0]),
            ids[2],
            adj.CREDIT,
            15_000_00,  # ₹15,000 > ₹10,000: waits for a second admin
            "Goodwill credit after the clinic's billing mistake",
            "Goodwill credit for a billing mistake",
        )
        adjustment_id = made.id
        assert made.status == AdjustmentStatus.PENDING_APPROVAL

    original = projection.PROJECTORS[WalletAdjustment]
    approved, started = [], []

    def approve_meanwhile():
        with pg_app.app_context():
            adj.approve_adjustment(db.session.get(User, ids[1]), adjustment_id)
            approved.append(True)
            db.session.remove()

    def projector(obj):
        if obj.id == adjustment_id and not started:
            started.append(True)  # the approval's own commit projects through here too
            row = original(obj)  # read before the approval, as the rebuild does
            thread = threading.Thread(target=approve_meanwhile)
            thread.start()
            thread.join(30)
            return row
        return original(obj)

    monkeypatch.setitem(projection.PROJECTORS, WalletAdjustment, projector)
    result = pg_app.test_cli_runner().invoke(transactions_cli, ["rebuild"])
    assert result.exit_code == 0, result.output
    assert approved
    with pg_app.app_context():
        status = db.session.get(WalletAdjustment, adjustment_id).status
        row = db.session.scalar(
            sa.select(MoneyMovement).where(
                MoneyMovement.source == "wallet_adjustment",
                MoneyMovement.source_id == adjustment_id,
            )
        )
        assert status == AdjustmentStatus.APPLIED
        assert row.status == status, f"console says {row.status}, the adjustment is {status}"
