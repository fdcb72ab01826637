"""A close and a hold by the same patient at once (two tabs), on PostgreSQL: never both
win (docs/privacy.md). The closure takes the account's row FOR UPDATE before it reads what
is booked; the person's claim's trigger takes it FOR KEY SHARE and refuses a claim of a
closed account. So does a family member added at the desk meanwhile
(``accounts.dependents``: never a named child on an erased account). The two sides are put
in each order by events (and a wait on the lock), so the outcome is the same every run."""

import threading
from datetime import date

import pytest
import sqlalchemy as sa

from portal.accounts import dependents
from portal.accounts.models import Dependent, User
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


def _add_child(world):
    uid = world.patients[0]
    patient, admin = db.session.get(User, uid), db.session.get(User, world.admin)
    return dependents.add_dependent(
        patient, "Meera Sharma", "child", date(2020, 5, 1), actor=admin
    ).id


def _family(pg_app, uid):
    """(closed, the family's ids, whether each has lost name and date of birth)."""
    with pg_app.app_context():
        closed = db.session.get(User, uid).closed_at is not None
        family = db.session.scalars(
            sa.select(Dependent).where(Dependent.guardian_id == uid).order_by(Dependent.id)
        ).all()
        erased = [d.name == f"Family member #{d.id}" and d.date_of_birth is None for d in family]
        ids = [d.id for d in family]
        db.session.remove()
    return closed, ids, erased


def test_a_child_added_while_the_close_commits_waits_and_is_refused(pg_app, clock, monkeypatch):
    """The closure has read nothing owed and not committed; the desk's child waits for the
    account's row, then reads it closed and is refused with the form's message."""
    world = _world(pg_app)
    uid = world.patients[0]
    _, family, _ = _family(pg_app, uid)
    read, go = threading.Event(), threading.Event()
    original = closure.blockers

    def blockers(pid):
        answer = original(pid)
        read.set()
        go.wait(10)  # the child is waiting for the account's row
        return answer

    monkeypatch.setattr(closure, "blockers", blockers)

    def add():
        read.wait(10)
        return _add_child(world)

    def release():
        read.wait(10)
        wait_for_lock_waiters(db.engine, 1)
        go.set()

    results = run_together(
        pg_app, lambda: closure.close_account(uid, PASSWORD, True).id, add, release
    )
    assert results[0] == uid, results
    assert isinstance(results[1], dependents.ValidationError), results
    assert results[1].errors[dependents.FORM].template == dependents.MSG_CLOSED
    assert _family(pg_app, uid) == (True, family, [True] * len(family))


def test_a_close_while_a_child_is_being_added_waits_and_erases_it(pg_app, clock, monkeypatch):
    """The child is written (and its audit row), not committed; the closure waits for the
    account's row, then reads the family with the child in it and erases her name and
    date of birth like any family member's."""
    world = _world(pg_app)
    uid = world.patients[0]
    _, family, _ = _family(pg_app, uid)
    written, go = threading.Event(), threading.Event()
    original = dependents.record

    def record(actor, action, *args, **kwargs):
        answer = original(actor, action, *args, **kwargs)
        if action == "dependent.add":  # after the row's flush, before the commit
            written.set()
            go.wait(10)  # the closure is waiting for the account's row
        return answer

    monkeypatch.setattr(dependents, "record", record)

    def close():
        written.wait(10)
        return closure.close_account(uid, PASSWORD, True).id

    def release():
        written.wait(10)
        wait_for_lock_waiters(db.engine, 1)
        go.set()

    results = run_together(pg_app, close, lambda: _add_child(world), release)
    assert results[0] == uid and isinstance(results[1], int), results
    family.append(results[1])
    assert _family(pg_app, uid) == (True, family, [True] * len(family))
