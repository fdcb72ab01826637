"""Two administrators paying out the same wallet balance by bank transfer at once, on the
real PostgreSQL: the wallet's row lock makes the second wait and read what the first left,
so the balance is paid out once and the wallet never goes below zero. Fails (never skips)
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
from portal.wallet import bank
from portal.wallet.models import BANK_PAYOUT, WalletAdjustment
from tests.threads import run_together
from tests.wallet.test_wallet_postgres import pg_people  # noqa: F401  (fixture)

pytestmark = pytest.mark.postgres

NOTE = "Closing balance sent by IMPS to the patient"


def _pay(admin_id, patient_id, paise, utr, barrier):
    def body():
        barrier.wait()
        admin = db.session.get(User, admin_id)
        return bank.pay_out(admin, patient_id, paise, NOTE, utr).status

    return body


@pytest.mark.parametrize("same_utr", [False, True], ids=["two-transfers", "one-transfer"])
def test_two_admins_paying_out_the_same_balance_take_it_once(pg_app, pg_people, same_utr):  # noqa: F811
    """Each thinks the balance is there: one transfer is recorded, the other refused (by
    the balance, or by the UTR already recorded when both typed the same advice)."""
    p = pg_people
    with pg_app.app_context():
        adj.create_adjustment(
            db.session.get(User, p["a3"]), p["p"], adj.CREDIT, 5_000_00, NOTE, "Credit"
        )
        db.session.remove()
    barrier = threading.Barrier(2)
    utrs = ("412345678901", "412345678901" if same_utr else "412345678902")
    results = run_together(
        pg_app,
        _pay(p["a1"], p["p"], 5_000_00, utrs[0], barrier),
        _pay(p["a2"], p["p"], 5_000_00, utrs[1], barrier),
    )
    assert results.count("APPLIED") == 1, results
    refused = [r for r in results if isinstance(r, adj.AdjustmentError)]
    assert len(refused) == 1, results
    with pg_app.app_context():
        paid = db.session.scalars(
            sa.select(WalletAdjustment).where(WalletAdjustment.kind == BANK_PAYOUT)
        ).all()
        assert [(r.status, r.balance_before, r.balance_after) for r in paid] == [
            ("APPLIED", 5_000_00, 0)
        ]
        expected = (
            {"utr": bank.MSG_UTR_USED.format(id=paid[0].id)}
            if same_utr
            else {"amount": bank.MSG_MORE_THAN_BALANCE}
        )
        assert refused[0].errors == expected
        assert balance(chart.patient_wallet(p["p"])) == 0
        assert verify_ledger() == []
        db.session.remove()
