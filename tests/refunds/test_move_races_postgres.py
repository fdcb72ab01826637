"""Two moves of one booking confirmed at once from the same page state on the real
PostgreSQL (review finding: the visit's lock serialised them, but the second was not
refused; the booking moved twice and the fee was taken twice). Now the second sees the
first's start under the lock and is refused: one move, one fee. Fails (never skips)
without PostgreSQL."""

import threading

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.booking import reschedule as rs
from portal.booking.errors import BookingError, SlotUnavailable
from portal.booking.models import IndividualBooking, Reschedule
from portal.domain.states import RescheduleStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from tests.booking.factories import at, build_world, credit_wallet, start_gateway
from tests.refunds.helpers import book_and_pay, hours

pytestmark = pytest.mark.postgres

START = at(4, 10)


@pytest.fixture
def pg_gateway(pg_app):
    gw = start_gateway(pg_app)
    yield gw
    gw.close()


def test_two_moves_of_one_booking_at_once_charge_one_fee(pg_app, pg_gateway, clock):
    with pg_app.app_context():
        world = build_world()
        patient = db.session.get(User, world.patients[0])
        item = book_and_pay(
            world, patient, pg_gateway, [(world.consult, [world.doctors[0]], START)]
        ).items[0]
        item_id, patient_id = item.id, patient.id
        credit_wallet(patient_id, 100_000)
        db.session.remove()
    clock.move_to(START - hours(60))
    with pg_app.app_context():
        shown_item, shown = rs.quote(db.session.get(User, patient_id), item_id)
        fee, shown_start = shown.total, shown_item.start_at
        db.session.remove()
    barrier = threading.Barrier(2)
    out = [None, None]

    def attempt(i, new_start):
        with pg_app.app_context():
            try:
                barrier.wait()
                rs.reschedule(
                    db.session.get(User, patient_id),
                    item_id,
                    new_start,
                    pay_with="wallet",
                    expected_fee=fee,
                    shown_start=shown_start,  # both pages showed the same start
                )
                out[i] = "moved"
            except (BookingError, SlotUnavailable) as exc:
                out[i] = str(exc.message)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                out[i] = f"error: {exc!r}"
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=attempt, args=(0, at(4, 14))),
        threading.Thread(target=attempt, args=(1, at(4, 15))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with pg_app.app_context():
        done = db.session.scalars(
            sa.select(Reschedule).where(Reschedule.status == RescheduleStatus.DONE)
        ).all()
        spent = 100_000 - balance(chart.patient_wallet(patient_id))
        start = db.session.get(IndividualBooking, item_id).start_at
        db.session.remove()
    assert out.count("moved") == 1, out
    [refused] = [o for o in out if o != "moved"]
    assert refused.startswith("This appointment was moved to"), out
    assert len(done) == 1 and spent == fee, (len(done), spent, fee)
    assert start == done[0].new_start
