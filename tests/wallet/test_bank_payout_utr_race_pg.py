"""Re-read finding: one bank transfer (one UTR) recorded on two patients' wallets at once, on
the real PostgreSQL. ``bank._recorded_once`` is checked under the WALLET's lock only, so
two administrators recording the same advice against two different wallets both pass the
check before either commits: two pay-outs, two wallets debited and ``bank`` credited
twice for one transfer. One UTR must be recorded once, whichever wallet ("any wallet's")."""

import threading

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.accounts.passwords import hash_password
from portal.extensions import db
from portal.wallet import adjustments as adj
from portal.wallet import bank
from portal.wallet.models import BANK_PAYOUT, WalletAdjustment
from tests.threads import run_together
from tests.wallet.test_wallet_postgres import pg_people  # noqa: F401  (fixture)

pytestmark = pytest.mark.postgres

NOTE = "Closing balance sent by IMPS to the patient"
UTR = "412345678901"


def test_one_utr_on_two_wallets_at_once_is_recorded_once(pg_app, pg_people, monkeypatch):  # noqa: F811
    p = pg_people
    with pg_app.app_context():
        other = User(
            email="p2@example.com", name="p2", role="patient", password_hash=hash_password("x")
        )
        db.session.add(other)
        db.session.commit()
        p2 = other.id
        for patient in (p["p"], p2):
            adj.create_adjustment(
                db.session.get(User, p["a3"]), patient, adj.CREDIT, 1_000_00, NOTE, "Credit"
            )
        db.session.remove()

    # Both requests have run their UTR check before either commits (a fix that
    # serialises on the UTR makes the first wait here a moment and go on alone).
    after_check = threading.Barrier(2)
    original = bank._recorded_once

    def recorded_once(utr):
        inner = original(utr)

        def check():
            inner()
            try:
                after_check.wait(timeout=3)
            except threading.BrokenBarrierError:
                pass

        return check

    monkeypatch.setattr(bank, "_recorded_once", recorded_once)

    def pay(admin_id, patient_id):
        def body():
            admin = db.session.get(User, admin_id)
            return bank.pay_out(admin, patient_id, 1_000_00, NOTE, UTR).status

        return body

    results = run_together(pg_app, pay(p["a1"], p["p"]), pay(p["a2"], p2))
    with pg_app.app_context():
        recorded = db.session.scalars(
            sa.select(WalletAdjustment).where(
                WalletAdjustment.kind == BANK_PAYOUT, WalletAdjustment.receipt_no == UTR
            )
        ).all()
        db.session.remove()
    assert len(recorded) == 1, (results, [(r.patient_id, r.status) for r in recorded])
    assert results.count("APPLIED") == 1, results
    [refused] = [r for r in results if r != "APPLIED"]
    assert isinstance(refused, adj.AdjustmentError), results
    assert "That UTR is already recorded" in refused.errors["utr"]
