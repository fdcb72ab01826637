"""Two profiles of one PAN paid at the same moment on PostgreSQL, together crossing the
₹50,000 threshold: the second payout's TDS replay must see the first's payout (the payee's
payout lock, ``common.lock_payee``), so the PAN's year deducts exactly 10% of its gross.
Each profile's own payout lock does not guard it: they are two providers."""

import threading
import time

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.payouts import create
from portal.payouts import models as m
from tests.payouts.conftest import World, sandbox_x
from tests.plugin import user_maker
from tests.threads import lock_waiters, run_together

pytestmark = pytest.mark.postgres

PAN = "ABCPK1234L"


@pytest.fixture
def pg_x(pg_app, ledger_stays_sound):
    with sandbox_x(pg_app) as served:
        yield served


def _replays_meet(monkeypatch, timeout=10.0):
    """The first payout to replay the year waits, inside its replay, until the second
    either waits for a lock (the payee's: it replays after the first commits) or replays
    too (nothing kept it out: each reads the year without the other's payout)."""
    replay, gate, first_in, second_in = create.tds_for_next, threading.Lock(), [], threading.Event()

    def tds_for_next(*args, **kwargs):
        with gate:
            first = not first_in
            first_in.append(True)
        if not first:
            second_in.set()
            return replay(*args, **kwargs)
        deadline = time.monotonic() + timeout
        while not second_in.is_set() and lock_waiters(db.engine) == 0:
            if time.monotonic() > deadline:
                raise AssertionError("the other payout never replayed nor waited for a lock")
            time.sleep(0.01)
        return replay(*args, **kwargs)

    monkeypatch.setattr(create, "tds_for_next", tds_for_next)


def test_two_profiles_of_one_pan_paid_at_once_deduct_the_pans_tds(
    mid_year, pg_app, pg_x, monkeypatch
):
    from datetime import date

    from portal.payouts import runs

    make_user = user_maker(pg_app)
    with pg_app.app_context():
        world = World(pg_app, make_user, pg_x)
        doctor, doctor_user = world.ready_provider("WEEKLY", commission_bps=0)
        lab, lab_user = world.ready_provider("WEEKLY", commission_bps=0)
        doctor.pan = lab.pan = PAN
        db.session.commit()
        world.earn(doctor, doctor_user, 3_000_000)  # ₹30,000 paid: under the threshold
        runs.run_cycle("WEEKLY", date(2026, 11, 1))
        pg_x.settle()
        world.earn(doctor, doctor_user, 1_500_000)  # ₹15,000 each, paid at once:
        world.earn(lab, lab_user, 1_500_000)  # ₹60,000 in all to the PAN
        ids = doctor.id, lab.id
        db.session.remove()

    _replays_meet(monkeypatch)

    def pay(provider_id):
        return lambda: create.create_payout(provider_id, kind=m.MANUAL_KIND, apply_minimum=False)

    results = run_together(pg_app, *(pay(pid) for pid in ids))
    assert all(isinstance(r, m.Payout) for r in results), results
    with pg_app.app_context():
        rows = db.session.execute(
            sa.select(m.Payout.gross, m.Payout.tds).where(m.Payout.provider_id.in_(ids))
        ).all()
        db.session.remove()
    assert sum(g for g, _t in rows) == 6_000_000, rows
    assert sum(t for _g, t in rows) == 600_000, (
        f"₹60,000 paid in the year to one PAN, two payouts at once: TDS {rows}, "
        "not 10% of ₹60,000 in all"
    )
