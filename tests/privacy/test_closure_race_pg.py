"""A close and a hold by the same patient at once (two tabs), on PostgreSQL: never both
win (docs/privacy.md). The closure takes the account's row FOR UPDATE before it reads what
is booked; the person's claim's trigger takes it FOR KEY SHARE and refuses a claim of a
closed account. The two sides are put in each order by events (and a wait on the lock),
so the outcome is the same every run."""

import threading

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.accounts.passwords import hash_password
from portal.booking import visits
from portal.booking.errors import MSG_ACCOUNT_CLOSED, AccountClosed
from portal.booking.models import IndividualBooking, MasterBooking
from portal.extensions import db
from portal.privacy import closure
from tests.booking.factories import at, build_world
from tests.plugin import PASSWORD
from tests.threads import run_together, wait_for_lock_waiters

pytestmark = pytest.mark.postgres


def _world(pg_app):
    with pg_app.app_context():
        world = build_world(n_patients=1)
        db.session.get(User, world.patients[0]).password_hash = hash_password(PASSWORD)
        db.session.commit()
        db.session.remove()
    return world


def _hold(world, dependent_id=None):
    uid = world.patients[0]
    patient = db.session.get(User, uid)
    return visits.add_item(
        patient, patient_id=uid, service_id=world.consult, provider_ids=[world.doctors[0]],
        clinic_id=world.clinic, start_at=at(1, 10), dependent_id=dependent_id,
    ).id  # fmt: skip


def _outcome(pg_app, uid):
    """(closed, live appointments of the account)."""
    with pg_app.app_context():
        closed = db.session.get(User, uid).closed_at is not None
        live = db.session.scalar(
            sa.select(sa.func.count(IndividualBooking.id))
            .join(MasterBooking, MasterBooking.id == IndividualBooking.master_id)
            .where(MasterBooking.patient_id == uid, IndividualBooking.status == "SCHEDULED")
        )
        db.session.remove()
    return closed, live


@pytest.mark.parametrize("for_dependent", [False, True])
def test_a_hold_that_read_the_account_open_before_the_close_committed_is_refused(
    pg_app, clock, monkeypatch, for_dependent
):
    """The closure reads nothing booked; the other tab's hold then reads the account as
    still active; the closure commits: the hold's claim is refused, with a message
    (a dependent's hold too: it is made under the account)."""
    world = _world(pg_app)
    uid = world.patients[0]
    refusals_read, person_checked = threading.Event(), threading.Event()

    original_blockers = closure.blockers

    def blockers(patient_id):
        answer = original_blockers(patient_id)  # nothing owed yet
        refusals_read.set()
        person_checked.wait(10)  # the other tab's hold has read the account: still active
        return answer

    original_check = visits.check_person

    def check_person(*args):
        refusals_read.wait(10)
        answer = original_check(*args)
        person_checked.set()
        return answer

    monkeypatch.setattr(closure, "blockers", blockers)
    monkeypatch.setattr(visits, "check_person", check_person)

    def close():
        return closure.close_account(uid, PASSWORD, True).id

    results = run_together(
        pg_app, close, lambda: _hold(world, world.child if for_dependent else None)
    )
    assert results[0] == uid, results
    assert isinstance(results[1], AccountClosed), results
    assert results[1].message == MSG_ACCOUNT_CLOSED
    assert _outcome(pg_app, uid) == (True, 0)


def test_a_close_while_a_hold_is_being_written_waits_for_it_and_is_refused(
    pg_app, clock, monkeypatch
):
    """The hold has written its claims and not committed; the closure waits for the
    account's row, then reads the hold and is refused over it (nothing erased)."""
    world = _world(pg_app)
    uid = world.patients[0]
    claimed, closure_waits = threading.Event(), threading.Event()

    original_record = visits.record

    def record(actor, action, *args, **kwargs):
        if action == "booking.hold":  # after the claims' flush, before the commit
            claimed.set()
            closure_waits.wait(10)
        return original_record(actor, action, *args, **kwargs)

    monkeypatch.setattr(visits, "record", record)

    def close():
        claimed.wait(10)
        return closure.close_account(uid, PASSWORD, True).id

    def release_when_the_closure_waits():
        claimed.wait(10)
        wait_for_lock_waiters(db.engine, 1)
        closure_waits.set()

    results = run_together(pg_app, close, lambda: _hold(world), release_when_the_closure_waits)
    assert isinstance(results[0], closure.ClosureRefused), results
    assert "waiting for payment" in results[0].reasons[0].template
    assert isinstance(results[1], int), results
    assert _outcome(pg_app, uid) == (False, 1)
