"""A patient's deactivation and the desk's hold for them at once, on PostgreSQL: never
both win (docs/privacy.md). The deactivation takes the account's row FOR UPDATE before it
reads what is booked; the person's claim's trigger takes it FOR KEY SHARE and refuses a
claim of an account deactivated by then. The two sides are put in each order by events
(and a wait on the lock), so the outcome is the same every run."""

import threading

import pytest
import sqlalchemy as sa

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.booking import deactivation, visits
from portal.booking.errors import AccountDeactivated
from portal.booking.models import IndividualBooking, MasterBooking
from portal.extensions import db
from tests.booking.conftest import clock  # noqa: F401
from tests.booking.factories import at, build_world
from tests.threads import run_together, wait_for_lock_waiters

pytestmark = pytest.mark.postgres


def _world(pg_app):
    with pg_app.app_context():
        world = build_world(n_patients=1)
        db.session.remove()
    return world


def _hold(world, dependent_id=None):
    """The desk books for the patient (or their child)."""
    return visits.add_item(
        db.session.get(User, world.admin), patient_id=world.patients[0],
        service_id=world.consult, provider_ids=[world.doctors[0]], clinic_id=world.clinic,
        start_at=at(1, 10), dependent_id=dependent_id,
    ).id  # fmt: skip


def _deactivate(world):
    return accounts.deactivate_user(db.session.get(User, world.admin), world.patients[0]).id


def _outcome(pg_app, uid):
    """(active, live appointments of the account)."""
    with pg_app.app_context():
        active = db.session.get(User, uid).active
        live = db.session.scalar(
            sa.select(sa.func.count(IndividualBooking.id))
            .join(MasterBooking, MasterBooking.id == IndividualBooking.master_id)
            .where(MasterBooking.patient_id == uid, IndividualBooking.status == "SCHEDULED")
        )
        db.session.remove()
    return active, live


@pytest.mark.parametrize("for_dependent", [False, True])
def test_a_hold_that_read_the_account_active_before_the_deactivation_committed_is_refused(
    pg_app, clock, monkeypatch, for_dependent
):
    """The deactivation reads nothing booked; the desk's hold then reads the account as
    active; the deactivation commits: the hold's claim is refused, with a message (a
    dependent's hold too: it is made under the account)."""
    world = _world(pg_app)
    uid = world.patients[0]
    business_read, person_checked = threading.Event(), threading.Event()

    original_business = deactivation.open_business

    def open_business(patient_id):
        answer = original_business(patient_id)  # nothing booked yet
        business_read.set()
        person_checked.wait(10)  # the desk's hold has read the account: still active
        return answer

    original_check = visits.check_person

    def check_person(*args):
        business_read.wait(10)
        answer = original_check(*args)
        person_checked.set()
        return answer

    monkeypatch.setattr(deactivation, "open_business", open_business)
    monkeypatch.setattr(visits, "check_person", check_person)

    results = run_together(
        pg_app,
        lambda: _deactivate(world),
        lambda: _hold(world, world.child if for_dependent else None),
    )
    assert results[0] == uid, results
    assert isinstance(results[1], AccountDeactivated), results
    assert _outcome(pg_app, uid) == (False, 0)


def test_a_deactivation_while_a_hold_is_being_written_waits_for_it_and_is_refused(
    pg_app, clock, monkeypatch
):
    """The hold has written its claims and not committed; the deactivation waits for the
    account's row, then reads the hold and is refused over it (nothing changed)."""
    world = _world(pg_app)
    uid = world.patients[0]
    claimed, deactivation_waits = threading.Event(), threading.Event()

    original_record = visits.record

    def record(actor, action, *args, **kwargs):
        if action == "booking.hold":  # after the claims' flush, before the commit
            claimed.set()
            deactivation_waits.wait(10)
        return original_record(actor, action, *args, **kwargs)

    monkeypatch.setattr(visits, "record", record)

    def deactivate():
        claimed.wait(10)
        return _deactivate(world)

    def release_when_the_deactivation_waits():
        claimed.wait(10)
        wait_for_lock_waiters(db.engine, 1)
        deactivation_waits.set()

    results = run_together(
        pg_app, deactivate, lambda: _hold(world), release_when_the_deactivation_waits
    )
    assert isinstance(results[0], accounts.ValidationError), results
    assert "1 visit " in str(next(iter(results[0].errors.values())))
    assert isinstance(results[1], int), results
    assert _outcome(pg_app, uid) == (True, 1)
