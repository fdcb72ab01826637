"""Two concurrent cancellations of the same item on the real PostgreSQL: exactly one
wins, one refund at the sandbox, one cancellation posting and one refund in the ledger.
Fails (never skips) without PostgreSQL."""

import threading

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.booking import reschedule_payment
from portal.booking.models import Reschedule
from portal.catalog.models import Provider
from portal.db import unit_of_work
from portal.domain.states import RescheduleStatus
from portal.extensions import db
from portal.ledger.check import verify_ledger
from portal.ledger.models import LedgerTransaction
from portal.refunds import common as refunds_common
from portal.refunds.common import CancellationError
from portal.refunds.models import Cancellation, Refund
from tests.booking.factories import at, build_world, start_gateway
from tests.refunds.helpers import (
    book_and_pay,
    consult_and_lab,
    move_paid_at_gateway,
    quoted_admin_cancel,
    quoted_cancel,
    quoted_move,
)
from tests.threads import run_together, wait_for_lock_waiters

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_gateway(pg_app):
    gw = start_gateway(pg_app)
    yield gw
    gw.close()


@pytest.mark.parametrize("who", ["patient+patient", "patient+admin"])
def test_two_concurrent_cancellations_refund_once(pg_app, pg_gateway, clock, who):
    with pg_app.app_context():
        world = build_world()
        patient = db.session.get(User, world.patients[0])
        visit = book_and_pay(
            world,
            patient,
            pg_gateway,
            consult_and_lab(world),
        )
        visit_id, item_id = visit.id, visit.items[0].id
        db.session.remove()

    barrier = threading.Barrier(2)
    outcomes = [None, None]

    def attempt(i):
        with pg_app.app_context():
            try:
                barrier.wait()
                if i == 1 and who == "patient+admin":
                    admin = db.session.get(User, world.admin)
                    quoted_admin_cancel(admin, item_id, "Patient phoned too")
                else:
                    patient = db.session.get(User, world.patients[0])
                    quoted_cancel(patient, visit_id, [item_id])
                outcomes[i] = "cancelled"
            except CancellationError as exc:
                outcomes[i] = exc.message
            except Exception as exc:  # noqa: BLE001 -- anything else fails the test
                outcomes[i] = f"error: {exc!r}"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == sorted(["cancelled", refunds_common.MSG_ALREADY]), outcomes

    pg_pay = pg_gateway
    pg_pay.sandbox.advance(10)
    assert all(status == 200 for _id, status in pg_pay.deliver())
    with pg_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Cancellation)) == 1
        rows = db.session.scalars(sa.select(Refund)).all()
        assert len(rows) == 1 and rows[0].status == "PROCESSED"
        assert len(pg_pay.sandbox.store.refunds) == 1
        kinds = [t.kind for t in db.session.scalars(sa.select(LedgerTransaction))]
        assert kinds.count("booking_cancelled") == 1 and kinds.count("refund_processed") == 1
        visit = db.session.get(type(visit), visit_id)
        assert visit.status == "PARTIALLY_CANCELLED"
        db.session.remove()


def test_cancelling_both_items_concurrently_cancels_the_visit(pg_app, pg_gateway, clock):
    with pg_app.app_context():
        world = build_world()
        patient = db.session.get(User, world.patients[0])
        visit = book_and_pay(
            world,
            patient,
            pg_gateway,
            consult_and_lab(world),
        )
        visit_id, ids = visit.id, [i.id for i in visit.items]
        db.session.remove()
    barrier = threading.Barrier(2)
    errors = []

    def attempt(item_id):
        with pg_app.app_context():
            try:
                barrier.wait()
                quoted_cancel(db.session.get(User, world.patients[0]), visit_id, [item_id])
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    with pg_app.app_context():
        from portal.booking.models import MasterBooking

        assert db.session.get(MasterBooking, visit_id).status == "CANCELLED"
        db.session.remove()


@pytest.fixture
def quarter_hours(pg_app):
    """Slots every 15 minutes: a patient's move by a quarter of an hour is on the grid."""
    saved = pg_app.config["SLOT_STEP_MINUTES"]
    pg_app.config["SLOT_STEP_MINUTES"] = 15
    yield
    pg_app.config["SLOT_STEP_MINUTES"] = saved


def test_held_new_time_may_overlap_its_own_old_time_but_no_other_booking(
    pg_app, pg_gateway, clock, quarter_hours
):
    """The exclusion constraint lets a booking's held new time overlap its old one (a move
    by 15 minutes), and still refuses any other booking on the held time."""
    from datetime import timedelta

    from sqlalchemy.exc import IntegrityError

    from portal.booking import claims
    from portal.booking.models import IndividualBooking, SlotClaim, provider_subject

    with pg_app.app_context():
        world = build_world()
        patient = db.session.get(User, world.patients[0])
        item = book_and_pay(
            world, patient, pg_gateway, [(world.consult, [world.doctors[0]], at(4, 10))]
        ).items[0]
        other = db.session.get(User, world.patients[1])
        stranger = book_and_pay(
            world, other, pg_gateway, [(world.consult, [world.doctors[0]], at(7, 10))]
        ).items[0]
        clock.move_to(at(4, 10) - timedelta(hours=60))
        result = quoted_move(
            patient,
            item.id,
            at(4, 10, 15),
            pay_with="gateway",
            callback_url="http://portal.test/cb/__ID__",
        )
        db.session.add(
            SlotClaim(
                booking_id=stranger.id,
                subject=provider_subject(world.doctors[0]),
                start_at=at(4, 10, 30),
                end_at=at(4, 11),
                live=True,
            )
        )
        with pytest.raises(IntegrityError) as err:
            db.session.flush()
        assert claims.is_exclusion_violation(err.value)
        db.session.rollback()
        done = reschedule_payment.complete_callback(
            pg_gateway.pay(result.reschedule.razorpay_order_id)
        )
        pg_gateway.deliver()
        assert done.status == RescheduleStatus.DONE
        db.session.expire_all()
        moved = db.session.get(IndividualBooking, item.id)
        assert (moved.start_at, moved.end_at) == (at(4, 10, 15), at(4, 10, 45))
        live = db.session.scalars(
            sa.select(SlotClaim).where(SlotClaim.booking_id == item.id, SlotClaim.live.is_(True))
        ).all()
        assert {(c.start_at, c.reschedule_id) for c in live} == {(at(4, 10, 15), None)}


def test_expiry_sweep_waits_for_a_late_capture_and_leaves_the_move_alone(pg_app, clock):
    """A fee captured just after its checkout expired (the hold still live) moves the
    booking; the sweep, running meanwhile, waits for the row and then leaves it DONE."""
    from datetime import timedelta

    from portal.booking.models import IndividualBooking, SlotClaim

    gateway = start_gateway(pg_app, deliver_webhooks=False)
    try:
        with pg_app.app_context():
            paid = move_paid_at_gateway(build_world(), gateway, clock)
            resched_id, expires, fee = paid.resched_id, paid.expires_at, paid.fee
            payment_id, item_id = paid.payment_id, paid.item_id
            db.session.remove()
        clock.move_to(expires + timedelta(minutes=1))
        captured = threading.Event()

        def capture():
            try:
                # An outer unit of work keeps the capture's transaction (and its row lock)
                # open until the sweep is seen waiting for the row.
                with unit_of_work():
                    reschedule_payment.payment_captured(resched_id, payment_id, fee)
                    captured.set()
                    wait_for_lock_waiters(db.engine)
                return "captured"
            finally:
                captured.set()

        def sweep():
            captured.wait(10)
            return reschedule_payment.expire_reschedules()

        assert run_together(pg_app, capture, sweep) == ["captured", 0]
        with pg_app.app_context():
            assert db.session.get(Reschedule, resched_id).status == "DONE"
            assert db.session.get(IndividualBooking, item_id).start_at == at(7, 11)
            live = db.session.scalars(
                sa.select(SlotClaim).where(
                    SlotClaim.booking_id == item_id, SlotClaim.live.is_(True)
                )
            ).all()
            assert {c.start_at for c in live} == {at(7, 11)} and len(live) == 2
            db.session.remove()
    finally:
        gateway.close()


def test_patient_and_doctor_cancelling_one_item_at_once_refund_and_penalise_once(
    pg_app, pg_gateway, clock
):
    """Review r3_races: the patient cancels a consult while the doctor cancels it too (a
    provider's cancellation refunds in full and penalises the doctor). One wins, the other
    is refused cleanly; one cancellation posting, at most one penalty, refunds never more
    than was paid."""
    from tests.refunds.helpers import quoted_provider_cancel

    with pg_app.app_context():
        world = build_world()
        patient = db.session.get(User, world.patients[0])
        visit = book_and_pay(
            world, patient, pg_gateway, [(world.consult, [world.doctors[0]], at(4, 10))]
        )
        visit_id, item_id = visit.id, visit.items[0].id
        paid = sum(i.paid_amount for i in visit.items)
        doctor_login = db.session.get(Provider, world.doctors[0]).user_id
        db.session.remove()
    barrier = threading.Barrier(2)

    def as_patient():
        barrier.wait()
        try:
            quoted_cancel(db.session.get(User, world.patients[0]), visit_id, [item_id])
            return "cancelled"
        except CancellationError as exc:
            return f"refused: {exc.message}"

    def as_doctor():
        barrier.wait()
        try:
            quoted_provider_cancel(
                db.session.get(User, doctor_login), item_id, "Called away urgently"
            )
            return "cancelled"
        except CancellationError as exc:
            return f"refused: {exc.message}"

    results = run_together(pg_app, as_patient, as_doctor)
    assert sorted(str(r)[:9] for r in results) == ["cancelled", "refused: "], results
    pg_gateway.sandbox.advance(10)
    pg_gateway.deliver()
    with pg_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Cancellation)) == 1
        refunds = db.session.scalars(sa.select(Refund)).all()
        kinds = [t.kind for t in db.session.scalars(sa.select(LedgerTransaction))]
        problems = verify_ledger()
        db.session.remove()
    assert problems == []
    assert sum(r.amount for r in refunds if not r.superseded) <= paid
    assert kinds.count("booking_cancelled") == 1, kinds
    assert kinds.count("provider_penalty") <= 1, kinds
