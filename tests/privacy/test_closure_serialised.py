"""The closure reads what is still booked with the hold path kept out until it commits
(docs/privacy.md): on SQLite by the claims' process-wide lock, which a hold holds from its
check to its commit; on PostgreSQL by the account's row FOR UPDATE, which the person's
claim's trigger takes FOR KEY SHARE. Probed from another thread, as a hold would."""

import threading

import sqlalchemy as sa

from portal.accounts.models import User
from portal.accounts.passwords import hash_password
from portal.booking import claims
from portal.db import SQLITE_LOCK as _SQLITE_LOCK
from portal.extensions import db
from portal.privacy import closure
from tests.booking.factories import build_world
from tests.plugin import PASSWORD


def test_a_hold_cannot_take_its_turn_while_the_closure_checks(app, ctx, clock, monkeypatch):
    world = build_world(n_patients=1)
    uid = world.patients[0]
    db.session.get(User, uid).password_hash = hash_password(PASSWORD)
    db.session.commit()
    engine, postgres, seen = db.engine, claims.is_postgres(), {}

    def try_a_holds_turn():
        if postgres:
            with engine.connect() as other:
                try:
                    other.execute(
                        sa.text("SELECT 1 FROM users WHERE id = :id FOR KEY SHARE NOWAIT"),
                        {"id": uid},
                    )
                    seen["free"] = True
                except sa.exc.OperationalError:  # lock_not_available
                    seen["free"] = False
                other.rollback()
            return
        seen["free"] = _SQLITE_LOCK.acquire(blocking=False)
        if seen["free"]:
            _SQLITE_LOCK.release()

    real = closure.blockers

    def blockers(patient_id):
        probe = threading.Thread(target=try_a_holds_turn)
        probe.start()
        probe.join(10)
        return real(patient_id)

    monkeypatch.setattr(closure, "blockers", blockers)
    closure.close_account(uid, PASSWORD, True)
    assert seen == {"free": False}
    assert db.session.get(User, uid).closed_at is not None
