"""Coupon limits under concurrency: the last use taken by two patients at once, one
patient's two tabs taking a per-patient use at once, one visit checked out in two tabs,
and a checkout waiting on an admin's deactivation. PostgreSQL only."""

import threading

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.booking import coupons, visits
from portal.booking.errors import BookingError
from portal.booking.models import Coupon, CouponRedemption
from portal.extensions import db
from tests.booking.factories import at, build_world, quoted_checkout

pytestmark = pytest.mark.postgres
CB = "http://portal.test/cb"


@pytest.fixture
def pg_world(pg_app, clock):
    with pg_app.app_context():
        world = build_world(n_patients=4)
        db.session.remove()
    return world


def _setup(pg_app, world, coupon_kw, holds):
    """Create the coupon and hold one consult per (patient index, doctor, day, hour), with
    the coupon applied; returns the visit ids."""
    with pg_app.app_context():
        admin = db.session.get(User, world.admin)
        coupons.create_coupon(admin, code="LAST", kind="PERCENT", value=1_000, **coupon_kw)
        ids = []
        for patient_i, doctor, day, hour in holds:
            patient = db.session.get(User, world.patients[patient_i])
            item = visits.add_item(
                patient,
                patient_id=patient.id,
                service_id=world.consult,
                provider_ids=[world.doctors[doctor]],
                clinic_id=world.clinic,
                start_at=at(day, hour),
            )
            visits.apply_coupon(patient, item.master_id, "LAST")
            ids.append((patient.id, item.master_id))
        db.session.remove()
    return ids


def _race(pg_app, pairs):
    barrier = threading.Barrier(len(pairs), timeout=60)
    outcomes = [None] * len(pairs)

    def attempt(i, patient_id, visit_id):
        with pg_app.app_context():
            try:
                patient = db.session.get(User, patient_id)
                db.session.get(Coupon, 1)
                barrier.wait()
                result = quoted_checkout(patient, visit_id, 0, CB)
                outcomes[i] = ("paid", result.payment.amount)
            except BookingError as exc:
                outcomes[i] = ("refused", str(exc.message))
            except Exception as exc:  # noqa: BLE001 -- any other error fails the test
                outcomes[i] = ("error", repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt, args=(i, p, v)) for i, (p, v) in enumerate(pairs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


def _state(pg_app):
    with pg_app.app_context():
        coupon = db.session.scalar(sa.select(Coupon))
        n = db.session.scalar(sa.select(sa.func.count()).select_from(CouponRedemption))
        used = coupon.used_count
        db.session.remove()
    return used, n


def test_two_patients_taking_the_last_use_at_once_one_wins(pg_app, pg_world):
    pairs = _setup(pg_app, pg_world, {"max_uses": 1}, [(0, 0, 1, 10), (1, 1, 1, 10)])
    outcomes = _race(pg_app, pairs)
    kinds = sorted(o[0] for o in outcomes)
    assert kinds == ["paid", "refused"], outcomes
    assert [o for o in outcomes if o[0] == "refused"][0][1] == coupons.MSG_USED_UP
    assert _state(pg_app) == (1, 1)


def test_one_patient_in_two_tabs_takes_a_per_patient_use_once(pg_app, pg_world):
    pairs = _setup(pg_app, pg_world, {"max_uses_per_patient": 1}, [(0, 0, 1, 10), (0, 1, 1, 12)])
    outcomes = _race(pg_app, pairs)
    kinds = sorted(o[0] for o in outcomes)
    assert kinds == ["paid", "refused"], outcomes
    assert [o for o in outcomes if o[0] == "refused"][0][1] == coupons.MSG_PER_PATIENT
    assert _state(pg_app) == (1, 1)


def test_one_visit_checked_out_in_two_tabs_holds_one_use(pg_app, pg_world):
    [(patient_id, visit_id)] = _setup(pg_app, pg_world, {"max_uses": 1}, [(0, 0, 1, 10)])
    outcomes = _race(pg_app, [(patient_id, visit_id), (patient_id, visit_id)])
    assert all(o[0] == "paid" for o in outcomes), outcomes
    assert _state(pg_app) == (1, 1)


def test_a_checkout_waiting_on_the_deactivation_does_not_take_the_deactivated_coupon(
    pg_app, pg_world
):
    """The admin deactivates the coupon (its row locked, as ``update_coupon`` locks it) while
    a checkout that read it active waits on its use (``take_use``'s UPDATE): once the
    deactivation commits, the checkout is refused with the reason, nothing taken. It took a
    use of the inactive coupon and was priced with it while that UPDATE re-checked only
    ``max_uses`` (review finding)."""
    from tests.threads import wait_for_lock_waiters

    [(patient_id, visit_id)] = _setup(pg_app, pg_world, {}, [(0, 0, 1, 10)])
    with pg_app.app_context():
        engine = db.engine
        admin_tx = engine.connect()
        trans = admin_tx.begin()
        admin_tx.execute(sa.text("SELECT id FROM coupons WHERE code = 'LAST' FOR NO KEY UPDATE"))
        admin_tx.execute(
            sa.text("UPDATE coupons SET active = false, version = version + 1 WHERE code = 'LAST'")
        )
        outcome = {}

        def pay():
            with pg_app.app_context():
                try:
                    patient = db.session.get(User, patient_id)
                    result = quoted_checkout(patient, visit_id, 0, CB)
                    outcome["paid"] = result.payment.amount
                except BookingError as exc:
                    outcome["refused"] = str(exc.message)
                except Exception as exc:  # noqa: BLE001
                    outcome["error"] = repr(exc)
                finally:
                    db.session.remove()

        thread = threading.Thread(target=pay)
        thread.start()
        try:
            wait_for_lock_waiters(engine, 1)
        finally:
            trans.commit()
            admin_tx.close()
        thread.join(60)
        coupon = db.session.scalar(sa.select(Coupon))
        assert coupon.active is False
        # Not paid with the 10 % off of a coupon inactive when its use was taken.
        assert outcome.get("paid") != 52_950 - 5_295, outcome
        assert coupon.used_count == 0, outcome
        assert outcome == {"refused": coupons.MSG_INACTIVE}, outcome
        db.session.remove()
