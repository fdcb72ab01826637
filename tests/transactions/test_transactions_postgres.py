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
