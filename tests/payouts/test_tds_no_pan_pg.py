"""Section 206AA on PostgreSQL: whether a payout deducts at the no-PAN rate is decided by
the PAN read under the payout's own lock (``common.lock_provider``, which every PAN write
takes first: ``common.lock_pan_write``). A PAN entered while the payout is being made
waits for it: the payout is made at 20% as it read (no PAN at that moment), and the next
payout, after the PAN, deducts 10%."""

import threading
import time

import pytest

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


def test_a_pan_entered_while_a_payout_is_made_waits_and_the_payout_keeps_the_rate_it_read(
    mid_year, pg_app, pg_x, monkeypatch
):
    from datetime import date

    from portal.accounts.models import User
    from portal.catalog import pan as pan_service
    from portal.payouts import runs

    make_user = user_maker(pg_app)
    with pg_app.app_context():
        world = World(pg_app, make_user, pg_x)
        provider, user = world.ready_provider("WEEKLY", commission_bps=0)
        world.earn(provider, user, 3_000_000)  # ₹30,000 paid: under the threshold
        runs.run_cycle("WEEKLY", date(2026, 11, 1))
        pg_x.settle()
        world.earn(provider, user, 3_000_000)  # the crossing payout, being made below
        provider_id, user_id = provider.id, user.id
        clinic_id, spec_id = world._clinic.id, world._spec.id
        db.session.remove()

    replaying, pan_written, held = threading.Event(), threading.Event(), []
    real = create.tds_for_next

    def tds_for_next(*args, **kwargs):
        # The payout has read the provider (no PAN) under its lock: hold it until the PAN
        # write either went through (nothing kept it out) or waits for a lock.
        replaying.set()
        deadline = time.monotonic() + 10
        while not pan_written.is_set() and lock_waiters(db.engine) == 0:
            assert time.monotonic() < deadline, "the PAN was neither written nor waiting"
            time.sleep(0.01)
        held.append("written meanwhile" if pan_written.is_set() else "waited")
        return real(*args, **kwargs)

    monkeypatch.setattr(create, "tds_for_next", tds_for_next)

    def pay():
        payout = create.create_payout(provider_id, kind=m.MANUAL_KIND, apply_minimum=False)
        return payout.tds, payout.tds_higher_section

    def enter_pan():
        assert replaying.wait(10)
        try:
            return pan_service.enter_own_pan(db.session.get(User, user_id), PAN, PAN).pan
        finally:
            pan_written.set()

    made, entered = run_together(pg_app, pay, enter_pan)
    assert entered == PAN
    assert held == ["waited"], "the PAN was written while the payout deciding its rate ran"
    assert made == (1_200_000, "206AA"), made  # no PAN when it was made: 20% of ₹60,000
    monkeypatch.setattr(create, "tds_for_next", real)
    with pg_app.app_context():
        from portal.catalog.models import Clinic, Provider, Specialization

        world = World(pg_app, make_user, pg_x)  # the same clinic's next appointment
        world._clinic, world._spec = (
            db.session.get(Clinic, clinic_id),
            db.session.get(Specialization, spec_id),
        )
        provider, user = db.session.get(Provider, provider_id), db.session.get(User, user_id)
        world.earn(provider, user, 1_000_000)
        later = create.create_payout(provider_id, kind=m.MANUAL_KIND, apply_minimum=False)
        assert (later.tds, later.tds_higher_section) == (100_000, None)
        pg_x.settle()
        db.session.remove()
