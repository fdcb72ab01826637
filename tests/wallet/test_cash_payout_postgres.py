"""Two administrators paying out the same wallet balance in cash at once, on the real
PostgreSQL: the wallet's row lock makes the second wait and read what the first left, so
the balance is paid out once and the wallet never goes below zero. Fails (never skips)
without PostgreSQL."""

import threading

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.check import verify_ledger
from portal.ledger.service import balance
from portal.wallet import adjustments as adj
from portal.wallet import cash
from portal.wallet.models import CASH_PAYOUT, WalletAdjustment
from tests.threads import run_together
from tests.wallet.test_wallet_postgres import pg_people  # noqa: F401  (fixture)

pytestmark = pytest.mark.postgres

NOTE = "Closing balance handed over in cash"


def _pay(pg_app, admin_id, patient_id, paise, barrier):
    def body():
        barrier.wait()
        admin = db.session.get(User, admin_id)
        return cash.pay_out(admin, patient_id, paise, NOTE, f"D-{admin_id}").status

    return body


def test_two_admins_paying_out_the_same_balance_take_it_once(pg_app, pg_people):  # noqa: F811
    p = pg_people
    with pg_app.app_context():
        adj.create_adjustment(
            db.session.get(User, p["a3"]), p["p"], adj.CREDIT, 5_000_00, NOTE, "Credit"
        )
        db.session.remove()
    barrier = threading.Barrier(2)
    results = run_together(
        pg_app,
        _pay(pg_app, p["a1"], p["p"], 5_000_00, barrier),
        _pay(pg_app, p["a2"], p["p"], 5_000_00, barrier),
    )
    assert results.count("APPLIED") == 1, results
    refused = [r for r in results if isinstance(r, adj.AdjustmentError)]
    assert len(refused) == 1 and refused[0].errors == {"amount": cash.MSG_MORE_THAN_BALANCE}
    with pg_app.app_context():
        assert balance(chart.patient_wallet(p["p"])) == 0
        paid = db.session.scalars(
            sa.select(WalletAdjustment).where(WalletAdjustment.kind == CASH_PAYOUT)
        ).all()
        assert [(r.status, r.balance_before, r.balance_after) for r in paid] == [
            ("APPLIED", 5_000_00, 0)
        ]
        assert verify_ledger() == []
        db.session.remove()
