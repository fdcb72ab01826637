"""A hold whose request read the patient before a closure committed is refused
(docs/privacy.md, "A hold at the same moment"). The request loads the patient early
(flask-login's current_user; the admin's pages read the patient or the booking first),
then waits for its turn: on SQLite the claims' process lock, which the closure holds to
its commit. Its session's copy then still says the account is active, so the hold's own
check passes; the refusal must come from a fresh read under the lock (SQLite,
``claims.add_claims``) or the claims' trigger (PostgreSQL). Runs on both backends; the
case is SQLite's (review: a closed account got a SCHEDULED hold and live claims there)."""

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.accounts.passwords import hash_password
from portal.booking import reschedule, visits
from portal.booking.errors import AccountClosed
from portal.booking.models import IndividualBooking, MasterBooking, SlotClaim
from portal.booking.tasks import expire_holds
from portal.extensions import db
from portal.privacy import closure
from tests.booking.factories import at, build_world
from tests.plugin import PASSWORD
from tests.threads import run_together


def _world(app):
    with app.app_context():
        world = build_world(n_patients=1)
        db.session.get(User, world.patients[0]).password_hash = hash_password(PASSWORD)
        db.session.commit()
        db.session.remove()
    return world


def _hold(actor, world, start):
    uid = world.patients[0]
    return visits.add_item(
        actor, patient_id=uid, service_id=world.consult, provider_ids=[world.doctors[0]],
        clinic_id=world.clinic, start_at=start,
    )  # fmt: skip


def _live(uid):
    """The account's SCHEDULED bookings and live claims."""
    booked = db.session.scalar(
        sa.select(sa.func.count(IndividualBooking.id))
        .join(MasterBooking, MasterBooking.id == IndividualBooking.master_id)
        .where(MasterBooking.patient_id == uid, IndividualBooking.status == "SCHEDULED")
    )
    claimed = db.session.scalar(
        sa.select(sa.func.count(SlotClaim.id))
        .join(IndividualBooking, IndividualBooking.id == SlotClaim.booking_id)
        .join(MasterBooking, MasterBooking.id == IndividualBooking.master_id)
        .where(MasterBooking.patient_id == uid, SlotClaim.live.is_(True))
    )
    return booked, claimed


@pytest.mark.parametrize("how", ["patient", "admin", "admin rebook"])
def test_a_hold_read_the_patient_before_the_closure_committed_is_refused(app, clock, how):
    """In the order the lock gives them, in one thread: the hold's request reads the
    patient, the closure commits, the hold takes its turn (new visit by the patient or an
    admin, or an admin's rebooking of the patient's expired booking)."""
    world = _world(app)
    uid = world.patients[0]
    expired = None
    if how == "admin rebook":
        with app.app_context():
            expired = _hold(db.session.get(User, uid), world, at(1, 10)).id
            clock.shift(timedelta(minutes=31))
            assert expire_holds() == 1
            db.session.remove()

    with app.app_context():  # the hold's request
        patient = db.session.get(User, uid)  # current_user / the admin page's patient
        actor = patient if how == "patient" else db.session.get(User, world.admin)
        assert patient.active

        with app.app_context():  # the closure, committed before the hold's turn
            closure.close_account(uid, PASSWORD, True)
            db.session.remove()

        with pytest.raises(AccountClosed):
            if expired is None:
                _hold(actor, world, at(1, 10))
            else:
                reschedule.rebook(actor, expired, at(2, 10))
        db.session.remove()

    with app.app_context():
        assert db.session.get(User, uid).closed_at is not None
        assert _live(uid) == (0, 0)
        db.session.remove()


def test_a_hold_waiting_for_the_closure_is_refused(app, clock, monkeypatch):
    """The same with two threads, as the embedded server runs two requests: the hold's
    request has read the patient, then asks for its turn while the closure has it (from
    its checks to its commit: privacy.closure), so it runs once the closure has committed
    (on PostgreSQL the claims' trigger waits for the account's row instead)."""
    world = _world(app)
    uid = world.patients[0]
    user_read, closure_checking = threading.Event(), threading.Event()
    real_blockers = closure.blockers

    def blockers(patient_id):  # called with the closure's lock (SQLite) / row (PostgreSQL)
        closure_checking.set()
        return real_blockers(patient_id)

    monkeypatch.setattr(closure, "blockers", blockers)

    def close():
        assert user_read.wait(10)
        return closure.close_account(uid, PASSWORD, True).id

    def hold():
        patient = db.session.get(User, uid)  # the request's current_user
        user_read.set()
        assert closure_checking.wait(10)
        return _hold(patient, world, at(1, 10)).id

    results = run_together(app, close, hold)
    assert results[0] == uid, results
    assert isinstance(results[1], AccountClosed), results
    with app.app_context():
        assert _live(uid) == (0, 0)
        db.session.remove()
