"""A closure and an administrator's further refund to the wallet at once, on PostgreSQL:
never a closed account with money on its way into its wallet (docs/privacy.md). The
closure takes the account's row FOR UPDATE before it reads what is owed; the further
refund's wallet part reads the row FOR KEY SHARE (``refunds.money.refuse_a_closed_wallet``).
Each order is forced by events and a wait on the lock, so the outcome is the same every run.
(The approval of a further refund cannot race a closure: a pending approval is itself a
reason the closure is refused, ``closure.blockers``.)"""

import threading

import pytest
import sqlalchemy as sa
import time_machine

from portal.accounts.models import User
from portal.accounts.passwords import hash_password
from portal.booking import prices
from portal.extensions import db
from portal.privacy import closure
from portal.refunds import approvals as ra
from portal.refunds.common import MSG_CLOSED_ACCOUNT, CancellationError
from portal.refunds.models import RefundApproval
from tests.booking.factories import NOW, at, build_world, start_gateway
from tests.plugin import PASSWORD
from tests.refunds.helpers import book_and_pay, hours, quoted_admin_cancel, settle_refunds
from tests.threads import run_together, wait_for_lock_waiters

pytestmark = pytest.mark.postgres

REASON = "Goodwill for the long wait"


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def pg_gateway(pg_app):
    gw = start_gateway(pg_app)
    yield gw
    gw.close()


def _cancelled(pg_app, gateway, clock):
    """A consult paid online, cancelled by an admin for the patient 30 hours ahead (a part
    kept, so more can be refunded), its refund to the card settled: nothing stands in the
    way of closing. Returns (world, patient id, item id)."""
    with pg_app.app_context():
        world = build_world(n_patients=1)
        patient = db.session.get(User, world.patients[0])
        patient.password_hash = hash_password(PASSWORD)
        db.session.commit()
        visit = book_and_pay(
            world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))]
        )
        item_id = visit.items[0].id
        clock.move_to(at(4, 10) - hours(30))
        admin = db.session.get(User, world.admin)
        quoted_admin_cancel(admin, item_id, "Doctor unavailable that day", prefer_wallet=False)
        settle_refunds(gateway, 24 * 3600)
        assert closure.blockers(patient.id) == []
        db.session.remove()
    return world, world.patients[0], item_id


def _request(world, item_id):
    admin = db.session.get(User, world.admin)
    return ra.request_further_refund(admin, item_id, 100_00, REASON, prefer_wallet=True).id


def _state(pg_app, patient_id):
    """(closed, further refunds waiting, wallet balance)."""
    with pg_app.app_context():
        closed = db.session.get(User, patient_id).is_closed
        waiting = db.session.scalar(sa.select(sa.func.count(RefundApproval.id)))
        balance = prices.wallet_balance(patient_id)
        db.session.remove()
    return closed, waiting, balance


def test_a_further_refund_asked_while_the_closure_commits_is_refused(
    pg_app, pg_gateway, clock, monkeypatch
):
    """The closure has read nothing owed and not committed; the administrator's request
    waits for the account's row, then reads it closed and is refused, with the message."""
    world, patient_id, item_id = _cancelled(pg_app, pg_gateway, clock)
    read, go = threading.Event(), threading.Event()
    original = closure.blockers

    def blockers(pid):
        answer = original(pid)
        read.set()
        go.wait(10)  # the request is waiting for the account's row
        return answer

    monkeypatch.setattr(closure, "blockers", blockers)

    def request():
        read.wait(10)
        return _request(world, item_id)

    def release():
        read.wait(10)
        wait_for_lock_waiters(db.engine, 1)
        go.set()

    results = run_together(
        pg_app, lambda: closure.close_account(patient_id, PASSWORD, True).id, request, release
    )
    assert results[0] == patient_id, results
    assert isinstance(results[1], CancellationError), results
    assert results[1].message == MSG_CLOSED_ACCOUNT
    assert _state(pg_app, patient_id) == (True, 0, 0)


def test_a_closure_while_a_further_refund_is_being_asked_waits_and_is_refused(
    pg_app, pg_gateway, clock, monkeypatch
):
    """The request has read the account open (its row held FOR KEY SHARE) and written the
    approval, not committed; the closure waits for the row, then reads the further refund
    waiting and is refused over it (nothing erased)."""
    world, patient_id, item_id = _cancelled(pg_app, pg_gateway, clock)
    written, go = threading.Event(), threading.Event()
    original = ra.request_approval

    def request_approval(*args, **kwargs):
        answer = original(*args, **kwargs)
        written.set()
        go.wait(10)  # the closure is waiting for the account's row
        return answer

    monkeypatch.setattr(ra, "request_approval", request_approval)

    def close():
        written.wait(10)
        return closure.close_account(patient_id, PASSWORD, True).id

    def release():
        written.wait(10)
        wait_for_lock_waiters(db.engine, 1)
        go.set()

    results = run_together(pg_app, close, lambda: _request(world, item_id), release)
    assert isinstance(results[0], closure.ClosureRefused), results
    assert isinstance(results[1], int), results
    assert _state(pg_app, patient_id) == (False, 1, 0)
