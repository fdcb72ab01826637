"""Clearing another person's stale hold never waits in a circle (PostgreSQL; review r1:
docs/booking.md, "One lock order for a booking's money").

A hold or a move cleared a stale hold in its way inside its own unit of work, under its
own visit and move: it locked that person's move without their visit first, and expiring
a visit with a wallet part posted to that patient's wallet before its own lock on the
time. A catalog change (a leave) posted that wallet part before its lock on the time too.
Each circle is forced here (each side held where it waited for the other); PostgreSQL
aborted one side: "Slot no longer available" for a time nobody took, or a 500 on the
doctor's leave. Now a use case that finds one stops, the hold is cleared in a unit of work
of its own (``holds.clears_stale_holds``) and the use case runs again; a catalog change
posts the money after its lock on the time (``holds._release_stale``)."""

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal.accounts.models import User
from portal.booking import claims, holds, visits
from portal.booking.models import IndividualBooking, MasterBooking, Reschedule
from portal.catalog.availability import add_leave
from portal.catalog.models import Provider
from portal.extensions import db
from portal.ledger.check import verify_ledger
from tests.booking.factories import NOW, at, build_world, credit_wallet, quoted_checkout
from tests.booking.factories import start_gateway as gateway_for
from tests.refunds.helpers import book_and_pay, quoted_move
from tests.threads import run_together, wait_for_lock_waiters

pytestmark = pytest.mark.postgres

CB = "http://portal.test/cb/__ID__"


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def gateway(pg_app):
    gw = gateway_for(pg_app, deliver_webhooks=False)
    yield gw
    gw.close()


def _outcome(x):
    if not isinstance(x, Exception):
        return x
    over = x.__cause__ or x.__context__
    return f"error: {x!r}" + (f" over {str(over)[:160]!r}" if over is not None else "")


def _move(patient_id, item_id, new_start, name, pay_with="wallet"):
    def body():
        threading.current_thread().name = name
        patient = db.session.get(User, patient_id)
        return quoted_move(patient, item_id, new_start, pay_with=pay_with).reschedule.status

    return body


# --- 1. two moves, each onto the other's lapsed fee hold ----------------------------------


def test_two_moves_onto_each_others_lapsed_fee_holds_both_go_through(
    pg_app, gateway, clock, monkeypatch
):
    """Patients 0 and 1 (same doctor) each asked a move paid online (0 to day 7 at 11:00,
    1 to day 7 at 14:00) and left the checkout: both requests lapsed, the sweep has not run.
    Now 0 moves to 14:00 and 1 to 11:00 (wallet). Made one after the other, both go
    through (each request replaces its own lapsed one, freeing its held time, and clears
    the other's stale hold). At the same moment, before the fix: each held its visit and
    its own move's row (``_supersede_pending``) and then, clearing the other's lapsed hold
    in ``check_slot``, waited for the OTHER's move row (taken without its visit, against
    "visit, then reschedule"). PostgreSQL aborted one: that patient read "Slot no longer
    available" for a time nobody took. Now each stops, clears the other's hold in a unit
    of work of its own (held here until both got there) and moves."""
    with pg_app.app_context():
        world = build_world()
        p0, p1 = (db.session.get(User, world.patients[i]) for i in (0, 1))
        b0 = book_and_pay(world, p0, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
        b1 = book_and_pay(world, p1, gateway, [(world.consult, [world.doctors[0]], at(4, 12))])
        i0, i1 = b0.items[0].id, b1.items[0].id
        clock.move_to(at(4, 10) - timedelta(hours=60))  # a move costs a fee
        r0 = quoted_move(p0, i0, at(7, 11), pay_with="gateway", callback_url=CB).reschedule
        r1 = quoted_move(p1, i1, at(7, 14), pay_with="gateway", callback_url=CB).reschedule
        clock.move_to(max(r0.expires_at, r1.expires_at) + timedelta(minutes=1))
        credit_wallet(p0.id, 10_000_00)
        credit_wallet(p1.id, 10_000_00)
        ids = p0.id, p1.id
        db.session.remove()

    both_there = threading.Barrier(2, timeout=10)
    real = holds.clear_stale_holds

    def clear_stale_holds(*args, **kwargs):
        if threading.current_thread().name in ("mover0", "mover1"):
            both_there.wait()  # both stopped at the other's lapsed hold
        return real(*args, **kwargs)

    monkeypatch.setattr(holds, "clear_stale_holds", clear_stale_holds)
    results = [
        _outcome(r)
        for r in run_together(
            pg_app,
            _move(ids[0], i0, at(7, 14), "mover0"),
            _move(ids[1], i1, at(7, 11), "mover1"),
        )
    ]
    with pg_app.app_context():
        starts = {
            b.id: b.start_at
            for b in db.session.scalars(
                sa.select(IndividualBooking).where(IndividualBooking.id.in_([i0, i1]))
            )
        }
        problems = verify_ledger()
        db.session.remove()
    assert problems == []
    assert results == ["DONE", "DONE"], results
    assert starts == {i0: at(7, 14), i1: at(7, 11)}


# --- 2. a hold clearing a stale visit with a wallet part vs that patient's wallet move ------


def _stale_visit_with_wallet_part(world, gateway, clock, patient_no, start):
    """A hold of ``patient_no`` at ``start`` with doctor 0, checked out paying 100 rupees
    from the wallet and the rest online, never paid: its hold ran out, the sweep has not
    run. Returns the visit id."""
    patient = db.session.get(User, world.patients[patient_no])
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=start,
    )
    quoted_checkout(patient, item.master_id, 100_00, callback_url="http://portal.test/cb")
    visit = db.session.get(MasterBooking, item.master_id)
    assert visit.status == "PENDING_PAYMENT"
    return visit.id, visit.hold_expires_at


def _world_for_wallet_order(pg_app, gateway, clock):
    """Patient 2: a confirmed booking (day 4, 12:00, doctor 0), money in the wallet, and a
    stale unpaid visit at day 3, 10:00 (doctor 0) with a wallet part reserved."""
    with pg_app.app_context():
        world = build_world()
        p2 = db.session.get(User, world.patients[2])
        credit_wallet(p2.id, 10_000_00)
        booked = book_and_pay(
            world, p2, gateway, [(world.consult, [world.doctors[0]], at(4, 12))]
        ).items[0]
        clock.move_to(at(4, 12) - timedelta(hours=60))  # a move costs a fee
        stale_visit, lapses = _stale_visit_with_wallet_part(world, gateway, clock, 2, at(3, 10))
        clock.move_to(lapses + timedelta(minutes=1))
        out = world, p2.id, booked.id, stale_visit
        db.session.remove()
    return out


def _time_lock_gate(monkeypatch, mover, other_waits_first):
    """The wallet move (thread ``mover``), once it holds the lock on the doctor's time,
    lets the other side go (``has_time``) and waits until it waits for a lock
    (``other_waits_first``), then goes on to its fee (the wallet's row)."""
    has_time = threading.Event()
    real = claims.lock_subjects

    def lock_subjects(subjects):
        real(subjects)
        if threading.current_thread().name == mover and not has_time.is_set():
            has_time.set()
            if other_waits_first:
                wait_for_lock_waiters(db.engine)

    monkeypatch.setattr(claims, "lock_subjects", lock_subjects)
    return has_time


def test_a_hold_clearing_a_stale_visit_with_a_wallet_part_and_that_patients_wallet_move(
    pg_app, gateway, clock, monkeypatch
):
    """Patient 0 holds day 3, 10:00 with doctor 0, where patient 2's unpaid visit (a
    wallet part reserved) ran out: ``add_item`` expired it in its own unit of work, which
    posted the wallet part back to patient 2's wallet (money) BEFORE patient 0's lock on
    the time (``add_claims -> lock_subjects``), against "the time first, then the money".
    Meanwhile patient 2 moves a booking with doctor 0 paying from the wallet: the lock on
    doctor 0's time, then the wallet's row (``post_fee``). Before the fix a circle:
    PostgreSQL aborted one, and a hold or a move of a free time was refused "Slot no longer
    available". Now the expiry is a unit of work of its own, which takes no lock on the
    time: the move waits for its commit, then the hold is made."""
    world, p2, booked, stale_visit = _world_for_wallet_order(pg_app, gateway, clock)
    with pg_app.app_context():
        p0 = world.patients[0]
    has_time = _time_lock_gate(monkeypatch, "mover", other_waits_first=False)
    hold_released_wallet = threading.Event()
    real_clear = holds.clear_stale_holds

    def clear_stale_holds(*args, **kwargs):
        found = real_clear(*args, **kwargs)
        if threading.current_thread().name == "holder":
            hold_released_wallet.set()  # the stale visit expired: its wallet part posted
            has_time.wait(10)  # the mover has the lock on the time now
            wait_for_lock_waiters(db.engine)  # and waits for the wallet's row
        return found

    monkeypatch.setattr(holds, "clear_stale_holds", clear_stale_holds)

    def hold():
        threading.current_thread().name = "holder"
        patient = db.session.get(User, p0)
        return visits.add_item(
            patient,
            patient_id=p0,
            service_id=world.consult,
            provider_ids=[world.doctors[0]],
            clinic_id=world.clinic,
            start_at=at(3, 10),
        ).status

    def move():
        hold_released_wallet.wait(10)
        return _move(p2, booked, at(7, 11), "mover")()

    results = [_outcome(r) for r in run_together(pg_app, hold, move)]
    with pg_app.app_context():
        problems = verify_ledger()
        expired = db.session.get(MasterBooking, stale_visit).status
        db.session.remove()
    assert problems == []
    assert results == ["SCHEDULED", "DONE"], results
    assert expired == "EXPIRED"


def test_a_leave_releasing_a_stale_visit_with_a_wallet_part_is_no_500(
    pg_app, gateway, clock, monkeypatch
):
    """Doctor 0 adds a leave on day 3 (09:00-12:00) where patient 2's unpaid visit (a
    wallet part reserved) ran out: ``release_stale_then_lock`` expired it first, posting
    the wallet part back (the wallet's row, by its foreign key), and only then took the
    lock on the doctor's time. Patient 2, at that moment, moves another booking with
    doctor 0 paying from the wallet (the time, then the wallet's row). Before the fix a
    circle; the leave is outside ``claims.claiming()``, so its 40P01 was a raw
    OperationalError (a 500 on the doctor's leave page). Now the leave locks the stale
    visit, then the time (waiting for the move), and posts the wallet part last."""
    world, p2, booked, stale_visit = _world_for_wallet_order(pg_app, gateway, clock)
    has_time = _time_lock_gate(monkeypatch, "mover", other_waits_first=True)
    with pg_app.app_context():
        doctor_user = db.session.get(Provider, world.doctors[0]).user_id

    def leave():
        has_time.wait(10)  # the mover holds the lock on doctor 0's time
        doctor = db.session.get(User, doctor_user)
        return add_leave(doctor, world.doctors[0], at(3, 9), at(3, 12), "Conference").provider_id

    results = [
        _outcome(r) for r in run_together(pg_app, leave, _move(p2, booked, at(7, 11), "mover"))
    ]
    with pg_app.app_context():
        problems = verify_ledger()
        moved = db.session.get(IndividualBooking, booked).start_at
        done = db.session.scalar(
            sa.select(sa.func.count()).select_from(Reschedule).where(Reschedule.status == "DONE")
        )
        db.session.remove()
    assert problems == []
    assert results == [world.doctors[0], "DONE"], results
    assert (moved, done) == (at(7, 11), 1)
