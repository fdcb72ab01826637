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


def _enter_own(lab_user_id, _admin_id, lab_id):
    from portal.accounts.models import User
    from portal.catalog import pan as pan_service

    return pan_service.enter_own_pan(db.session.get(User, lab_user_id), PAN, PAN).pan


def _admin_puts(_lab_user_id, admin_id, lab_id):
    from portal.accounts.models import User
    from portal.catalog.providers import update_provider

    return update_provider(db.session.get(User, admin_id), lab_id, pan=PAN).pan


@pytest.mark.parametrize("write_pan", [_enter_own, _admin_puts], ids=["own", "admin"])
def test_a_pan_written_while_its_profile_is_paid_waits_for_that_payout(
    mid_year, pg_app, pg_x, monkeypatch, write_pan
):
    """Review r3_races: a lab profile with no PAN is being paid (no payee lock: none on
    file) when its PAN, the doctor profile's (one person), is written, and the doctor is
    paid next under that PAN's lock. The lab's replay reads its PAN afresh at its
    statement: written meanwhile, it counted the doctor's year while holding no lock of
    the PAN, and each payout missed the other (₹60,000 to one PAN, no TDS). Every PAN
    write waits for the profile's payout lock (``catalog.pan.wait_for_payouts``): the lab
    is paid alone, and the doctor's payout, after the PAN, replays the lab's with its own."""
    from datetime import date

    from portal.payouts import runs
    from tests.plugin import user_maker

    make_user = user_maker(pg_app)
    with pg_app.app_context():
        world = World(pg_app, make_user, pg_x)
        doctor, doctor_user = world.ready_provider("WEEKLY", commission_bps=0)
        lab, lab_user = world.ready_provider("WEEKLY", commission_bps=0)
        admin_id = make_user("admin").id
        lab.registration_no = "KMC 48213"  # the admin's form checks the whole profile
        lab.specializations.append(world._spec)
        doctor.pan = PAN
        db.session.commit()
        world.earn(doctor, doctor_user, 3_000_000)  # ₹30,000 paid: under the threshold
        runs.run_cycle("WEEKLY", date(2026, 11, 1))
        pg_x.settle()
        world.earn(doctor, doctor_user, 1_500_000)
        world.earn(lab, lab_user, 1_500_000)  # ₹60,000 in all to the PAN
        doc_id, lab_id, lab_user_id = doctor.id, lab.id, lab_user.id
        db.session.remove()

    lab_locked, pan_written = threading.Event(), threading.Event()
    real_lock_payee = create.lock_payee

    def lock_payee(provider):
        real_lock_payee(provider)
        if provider.id == lab_id:
            # The lab's payout holds its locks until the PAN is written, or waits for it.
            lab_locked.set()
            deadline = time.monotonic() + 10
            while not pan_written.is_set() and lock_waiters(db.engine) == 0:
                assert time.monotonic() < deadline, "the PAN was neither written nor waiting"
                time.sleep(0.01)

    monkeypatch.setattr(create, "lock_payee", lock_payee)
    _replays_meet(monkeypatch)

    def pay_lab():
        return create.create_payout(lab_id, kind=m.MANUAL_KIND, apply_minimum=False)

    def write():
        assert lab_locked.wait(10)
        try:
            return write_pan(lab_user_id, admin_id, lab_id)
        finally:
            pan_written.set()

    def pay_doctor():
        assert pan_written.wait(10)
        return create.create_payout(doc_id, kind=m.MANUAL_KIND, apply_minimum=False)

    results = run_together(pg_app, pay_lab, write, pay_doctor)
    assert isinstance(results[0], m.Payout) and isinstance(results[2], m.Payout), results
    assert results[1] == PAN, results
    with pg_app.app_context():
        rows = db.session.execute(
            sa.select(m.Payout.provider_id, m.Payout.gross, m.Payout.tds)
        ).all()
        db.session.remove()
    assert sum(g for _p, g, _t in rows) == 6_000_000, rows
    assert sum(t for _p, _g, t in rows) == 600_000, (
        f"₹60,000 paid in the year to PAN {PAN}: TDS {rows}, not 10% of it"
    )


def test_pay_now_pays_the_net_it_showed_though_a_pan_is_entered_meanwhile(
    mid_year, pg_app, pg_x, monkeypatch
):
    """ "Pay now" checks the net it showed under the payee's lock, then pays: a PAN put on
    another profile in between (the lab, paid ₹30,000 alone) brought that profile's year
    into the payout's replay, and the admin paid a net they were never shown (₹7,500, not
    ₹15,000). The PAN write takes the payee locks of its PANs too
    (``common.lock_pan_write``): it waits for the payout, which is made as confirmed; the
    next payout to the PAN settles the year."""
    from datetime import date

    from portal.accounts.models import User
    from portal.catalog import pan as pan_service
    from portal.payouts import admin, runs
    from tests.plugin import user_maker

    make_user = user_maker(pg_app)
    with pg_app.app_context():
        world = World(pg_app, make_user, pg_x)
        doctor, doctor_user = world.ready_provider("WEEKLY", commission_bps=0)
        lab, lab_user = world.ready_provider("WEEKLY", commission_bps=0)
        admin_id = make_user("admin").id
        doctor.pan = PAN
        db.session.commit()
        world.earn(doctor, doctor_user, 3_000_000)
        world.earn(lab, lab_user, 3_000_000)  # ₹30,000 each, paid apart: no TDS
        runs.run_cycle("WEEKLY", date(2026, 11, 1))
        pg_x.settle()
        world.earn(doctor, doctor_user, 1_500_000)
        doc_id, lab_user_id = doctor.id, lab_user.id
        shown = admin.pay_now_preview(doc_id)
        assert (shown.gross, shown.net) == (1_500_000, 1_500_000)
        db.session.remove()

    checked, pan_written = threading.Event(), threading.Event()
    real_preview = admin.pay_now_preview

    def pay_now_preview(provider_id):
        preview = real_preview(provider_id)
        checked.set()
        deadline = time.monotonic() + 10
        while not pan_written.is_set() and lock_waiters(db.engine) == 0:
            assert time.monotonic() < deadline, "the PAN was neither written nor waiting"
            time.sleep(0.01)
        return preview

    monkeypatch.setattr(admin, "pay_now_preview", pay_now_preview)

    def pay_now():
        actor = db.session.get(User, admin_id)
        return admin.pay_now(actor, doc_id, shown.gross, shown.net).net

    def enter_pan():
        assert checked.wait(10)
        try:
            user = db.session.get(User, lab_user_id)
            return pan_service.enter_own_pan(user, PAN, PAN).pan
        finally:
            pan_written.set()

    assert run_together(pg_app, pay_now, enter_pan) == [1_500_000, PAN]
