"""Catalog edits at the same moment on PostgreSQL: one lock order, never a deadlock
(catalog.checks, "Lock order"; docs/booking.md, "One lock order for every catalog edit").

Each test forces the moment two clicks a few milliseconds apart give: each side is held
at the point where, before the fix, it held one lock the other needed next (its own row,
the lock on the provider's time), until the other side holds its own lock there too or is
found waiting on a lock (``pg_stat_activity``: in the fixed order the second waits at the
catalog's lock, before taking anything the first needs). Before the fix PostgreSQL's
deadlock detector aborted one of the two (an OperationalError, a 500 on that admin's or
doctor's page); now one waits for the other's commit and both are saved, or the later is
refused cleanly (a ValidationError shown on its form)."""

import threading
import time
from datetime import time as clock_time
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.catalog import availability, providers, services, time_lock
from portal.catalog.checks import ValidationError
from portal.catalog.models import Availability, Leave, Provider, provider_services
from portal.extensions import db
from tests.booking.factories import NOW, at, build_world
from tests.threads import lock_waiters, run_together, wait_for_lock_waiters

pytestmark = pytest.mark.postgres


def _meet(own, other, engine, timeout=10.0):
    """Say this side holds its lock (``own``), then go on once the other side holds its
    own too (``other``) or waits on a lock (the fixed order stopped it earlier)."""
    if own is not None:
        own.set()
    deadline = time.monotonic() + timeout
    while not other.is_set() and lock_waiters(engine) == 0:
        if time.monotonic() > deadline:
            raise AssertionError("the other side never got its lock nor waited for one")
        time.sleep(0.01)


def _database_errors(results):
    return [
        f"{type(r).__name__}: {str(r)[:300]}"
        for r in results
        if isinstance(r, Exception) and not isinstance(r, ValidationError)
    ]


@pytest.fixture
def clock():
    """The booking tests' moment (Monday 1 June 2026, 08:00 IST), ticking."""
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def pg_world(pg_app, clock):
    with pg_app.app_context():
        world = build_world(registered=True)
        db.session.remove()
    return world


def _linked(pg_app, provider_id, service_id):
    with pg_app.app_context():
        return db.session.scalar(
            sa.select(sa.func.count())
            .select_from(provider_services)
            .where(
                provider_services.c.provider_id == provider_id,
                provider_services.c.service_id == service_id,
            )
        )


@pytest.mark.parametrize("change", ["link", "unlink", "bio"])
def test_a_provider_and_a_service_saved_from_their_two_pages_at_once(
    pg_app, pg_world, monkeypatch, change
):
    """The service's page adds (or takes off) the doctor while the doctor's page adds (or
    takes off) the service, or saves only a new bio. Each held its own row (``FOR
    UPDATE``) and then needed the other's: the link row's foreign key (``FOR KEY SHARE``)
    or its ``version`` (``bump_versions``), or the ``catalog_version`` row the other's
    flush held."""
    world = pg_world
    doctor, follow = world.doctors[0], world.follow
    with pg_app.app_context():
        provider = db.session.get(Provider, doctor)
        others = [s.id for s in provider.services if s.id != follow]
        if change == "link":  # neither page offers the pair yet
            provider.services = [s for s in provider.services if s.id != follow]
            db.session.commit()
        service_doctors = [p.id for p in db.session.get(services.Service, follow).providers]
        db.session.remove()
    if change == "link":
        service_form = {"provider_ids": [*service_doctors, doctor]}
        doctor_form = {"service_ids": [*others, follow]}
    elif change == "unlink":
        service_form = {"provider_ids": [p for p in service_doctors if p != doctor]}
        doctor_form = {"service_ids": others}
    else:
        service_form = {"provider_ids": [p for p in service_doctors if p != doctor]}
        doctor_form = {"bio": "Twenty years in family medicine."}

    holds = {"provider": threading.Event(), "service": threading.Event()}

    def held(module, mine, theirs):
        real = module.lock_for_edit

        def lock_for_edit(*args, **kwargs):
            row = real(*args, **kwargs)
            _meet(holds[mine], holds[theirs], db.engine)
            return row

        monkeypatch.setattr(module, "lock_for_edit", lock_for_edit)

    held(providers, "provider", "service")
    held(services, "service", "provider")

    def on_the_doctors_page():
        return providers.update_provider(db.session.get(User, world.admin), doctor, **doctor_form)

    def on_the_services_page():
        return services.update_service(db.session.get(User, world.admin), follow, **service_form)

    results = run_together(pg_app, on_the_doctors_page, on_the_services_page, timeout=60)

    assert _database_errors(results) == []
    assert _linked(pg_app, doctor, follow) == (1 if change == "link" else 0)


def test_a_doctors_account_and_profile_deactivated_at_once(pg_app, pg_world, monkeypatch):
    """The Users page deactivates the doctor's account (its receiver took the lock on the
    provider's time, then wrote the profile) while the provider page deactivates the
    profile (its row locked, then the lock on the provider's time): opposite orders. The
    same administrator does both, in two tabs (an audit row refers to their account, which
    the Users page holds)."""
    world = pg_world
    doctor = world.doctors[0]
    with pg_app.app_context():
        login = db.session.get(Provider, doctor).user_id

    who = threading.local()
    at_time_lock = {"profile": threading.Event(), "account": threading.Event()}
    real = time_lock.lock_provider

    def lock_provider(provider_id):
        mine = getattr(who, "name", None)
        if mine == "profile":  # holds the profile's row: wait for the account's time lock
            _meet(at_time_lock["profile"], at_time_lock["account"], db.engine)
            return real(provider_id)
        if mine == "account":  # takes the time lock once the profile holds its row
            _meet(None, at_time_lock["profile"], db.engine)
            answer = real(provider_id)
            at_time_lock["account"].set()
            return answer
        return real(provider_id)

    monkeypatch.setattr(time_lock, "lock_provider", lock_provider)

    def on_the_provider_page():
        who.name = "profile"
        return providers.update_provider(db.session.get(User, world.admin), doctor, active=False)

    def on_the_users_page():
        who.name = "account"
        return accounts.deactivate_user(db.session.get(User, world.admin), login)

    results = run_together(pg_app, on_the_provider_page, on_the_users_page, timeout=60)

    assert [f"{type(r).__name__}: {r}" for r in results if isinstance(r, Exception)] == []
    with pg_app.app_context():
        assert db.session.get(Provider, doctor).active is False
        assert db.session.get(User, login).active is False


@pytest.mark.parametrize("doctors_change", ["leave", "weekly_window"])
def test_a_doctors_leave_or_hours_added_while_the_profile_is_deactivated(
    pg_app, pg_world, monkeypatch, doctors_change
):
    """The doctor adds a leave (or a weekly window) on their availability page while an
    admin deactivates their profile: the doctor's change took the lock on the provider's
    time and then inserted a row whose foreign key needs ``FOR KEY SHARE`` on the
    provider's row, which the admin's edit held ``FOR UPDATE`` while it waited for the lock
    on the provider's time."""
    world = pg_world
    doctor = world.doctors[0]
    with pg_app.app_context():
        provider = db.session.get(Provider, doctor)
        login = provider.user_id
        if doctors_change == "weekly_window":  # Fridays free for a new window
            provider.availability = [w for w in provider.availability if w.weekday != 4]
            db.session.commit()
        db.session.remove()

    who = threading.local()
    doctor_has_time, admin_has_row = threading.Event(), threading.Event()
    real_lock, real_edit = time_lock.lock_provider, providers.lock_for_edit

    def lock_provider(provider_id):
        answer = real_lock(provider_id)
        if getattr(who, "name", None) == "doctor":
            _meet(doctor_has_time, admin_has_row, db.engine)
        return answer

    def lock_for_edit(*args, **kwargs):
        _meet(None, doctor_has_time, db.engine)
        row = real_edit(*args, **kwargs)
        admin_has_row.set()
        return row

    monkeypatch.setattr(time_lock, "lock_provider", lock_provider)
    monkeypatch.setattr(providers, "lock_for_edit", lock_for_edit)

    def on_the_availability_page():
        who.name = "doctor"
        user = db.session.get(User, login)
        if doctors_change == "leave":
            start = at(20, 9)
            return availability.add_leave(
                user, doctor, start, start + timedelta(hours=4), "Conference"
            )
        return availability.add_availability(
            user, doctor, world.clinic, 4, clock_time(9), clock_time(13)
        )

    def on_the_provider_page():
        who.name = "admin"
        return providers.update_provider(db.session.get(User, world.admin), doctor, active=False)

    results = run_together(pg_app, on_the_availability_page, on_the_provider_page, timeout=60)

    assert _database_errors(results) == []
    with pg_app.app_context():
        assert db.session.get(Provider, doctor).active is False
        if doctors_change == "weekly_window":
            fridays = db.session.scalars(
                sa.select(Availability).where(
                    Availability.provider_id == doctor, Availability.weekday == 4
                )
            ).all()
            assert len(fridays) == 1


def test_two_overlapping_leaves_added_at_once_one_is_refused(pg_app, pg_world, monkeypatch):
    """The doctor and an admin add overlapping leave for the doctor at the same moment:
    whichever checks first holds the locks (the catalog's, then the provider's time) to
    its commit; the other waits there and then reads the first's leave, and is refused
    naming it. Before, each read no other leave and both were added."""
    world = pg_world
    doctor = world.doctors[0]
    with pg_app.app_context():
        login = db.session.get(Provider, doctor).user_id
        db.session.remove()
    checked, release = threading.Event(), threading.Event()
    real = availability.bookings_in_the_way

    def check_then_pause(*args, **kwargs):
        answer = real(*args, **kwargs)
        if not checked.is_set():  # the first to check holds its locks a while
            checked.set()
            release.wait(30)
        return answer

    monkeypatch.setattr(availability, "bookings_in_the_way", check_then_pause)

    def doctors_leave():
        user = db.session.get(User, login)
        return availability.add_leave(user, doctor, at(20, 9), at(20, 13), "Conference")

    def admins_leave():
        user = db.session.get(User, world.admin)
        return availability.add_leave(user, doctor, at(20, 11), at(20, 18), "Family")

    def let_go_once_the_other_waits():
        assert checked.wait(30)
        wait_for_lock_waiters(db.engine, 1)
        release.set()

    results = run_together(
        pg_app, doctors_leave, admins_leave, let_go_once_the_other_waits, timeout=60
    )
    assert _database_errors(results) == []
    added = [r for r in results[:2] if not isinstance(r, Exception)]
    refused = [r for r in results[:2] if isinstance(r, ValidationError)]
    assert len(added) == 1 and len(refused) == 1, results
    assert refused[0].errors["starts_at"].startswith("This overlaps the leave already added from")
    with pg_app.app_context():
        leaves = db.session.scalar(
            sa.select(sa.func.count(Leave.id)).where(Leave.provider_id == doctor)
        )
        assert leaves == 1
        db.session.remove()


def _until_someone_waits(engine, timeout=10.0, done=None):
    """Until another session waits on a lock, ``done`` is set, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while lock_waiters(engine) == 0 and time.monotonic() < deadline:
        if done is not None and done.is_set():
            return
        time.sleep(0.01)


def test_a_bio_saved_while_the_service_page_takes_the_doctor_off_never_deadlocks(
    pg_app, pg_world, monkeypatch
):
    """The [bio] case above in the order that deadlocked (review of the tests: released
    together, the old code deadlocked only when the service's flush went first, so that
    case passed 2 runs in 7 on it): the doctor's side goes on only once the other side
    waits on a lock."""

    world = pg_world
    doctor, follow = world.doctors[0], world.follow
    with pg_app.app_context():
        service_doctors = [p.id for p in db.session.get(services.Service, follow).providers]
        db.session.remove()
    service_form = {"provider_ids": [p for p in service_doctors if p != doctor]}
    doctor_form = {"bio": "Twenty years in family medicine."}
    holds = {"provider": threading.Event(), "service": threading.Event()}
    service_done = threading.Event()

    real_provider, real_service = providers.lock_for_edit, services.lock_for_edit

    def provider_lock_for_edit(*args, **kwargs):
        row = real_provider(*args, **kwargs)
        _meet(holds["provider"], holds["service"], db.engine)
        # The service's flush goes first: it waits on a lock (the old code), or it commits
        # without one (the fixed code; no need to wait out the 10 s then).
        _until_someone_waits(db.engine, done=service_done)
        return row

    def service_lock_for_edit(*args, **kwargs):
        row = real_service(*args, **kwargs)
        _meet(holds["service"], holds["provider"], db.engine)
        return row

    monkeypatch.setattr(providers, "lock_for_edit", provider_lock_for_edit)
    monkeypatch.setattr(services, "lock_for_edit", service_lock_for_edit)

    def on_the_doctors_page():
        return providers.update_provider(db.session.get(User, world.admin), doctor, **doctor_form)

    def on_the_services_page():
        try:
            return services.update_service(
                db.session.get(User, world.admin), follow, **service_form
            )
        finally:
            service_done.set()

    results = run_together(pg_app, on_the_doctors_page, on_the_services_page, timeout=60)
    assert _database_errors(results) == []
    assert _linked(pg_app, doctor, follow) == 0


@pytest.mark.parametrize("first", ["admin", "provider"])
def test_a_provider_entering_their_pan_while_an_admin_saves_their_form(
    pg_app, pg_world, monkeypatch, first
):
    """The doctor enters their PAN on their bank page (allowed while none is on file) while
    an admin saves the doctor's form, opened before, with another PAN. Each is held once
    it has its locks until the other waits for them: the second then sees the first's
    commit and is refused cleanly (the doctor: a PAN is on file now; the admin: the form
    is stale, the doctor's entry raised the version), never both written, never a
    database error (docs/payouts.md, "PAN")."""
    from portal.catalog import pan
    from portal.catalog.checks import FORM, StaleEdit

    world = pg_world
    doctor = world.doctors[0]
    with pg_app.app_context():
        provider = db.session.get(Provider, doctor)
        login, opened_at = provider.user_id, provider.version
        assert provider.pan is None
        db.session.remove()
    holding = threading.Event()

    def held(module, side):
        real = module.lock_for_edit

        def lock_for_edit(*args, **kwargs):
            row = real(*args, **kwargs)
            if side == first:
                holding.set()
                wait_for_lock_waiters(db.engine)  # the other side waits for these locks
            return row

        monkeypatch.setattr(module, "lock_for_edit", lock_for_edit)

    held(providers, "admin")
    held(pan, "provider")

    def on_the_admins_form():
        if first != "admin":
            assert holding.wait(10)
        admin = db.session.get(User, world.admin)
        return providers.update_provider(admin, doctor, base_version=opened_at, pan="ABCPR1234L")

    def on_the_doctors_bank_page():
        if first != "provider":
            assert holding.wait(10)
        return pan.enter_own_pan(db.session.get(User, login), "ZYXPD9876K", "ZYXPD9876K")

    admin, own = run_together(pg_app, on_the_admins_form, on_the_doctors_bank_page, timeout=60)

    assert _database_errors([admin, own]) == []
    with pg_app.app_context():
        on_file = db.session.get(Provider, doctor).pan
    if first == "admin":
        assert not isinstance(admin, Exception)
        assert isinstance(own, ValidationError) and own.errors == {FORM: pan.MSG_ON_FILE}
        assert on_file == "ABCPR1234L"
    else:
        assert not isinstance(own, Exception) and isinstance(admin, StaleEdit)
        assert on_file == "ZYXPD9876K"


def test_a_pan_waiting_for_the_doctors_payouts_holds_up_no_other_catalog_edit(pg_app, pg_world):
    """A PAN write waits for the provider's payout lock (a payout being made, or a fund
    account being saved: seconds, at RazorpayX; ``pan.wait_for_payouts``) before the
    catalog's lock (step 0): another doctor's profile saved meanwhile is not held up
    behind it (had it waited holding the ``catalog_version`` row, every catalog edit
    would have), and the PAN is written once the payout lock is let go."""
    from portal.db import unit_of_work
    from portal.payouts.common import lock_provider

    world = pg_world
    doctor, other = world.doctors[0], world.doctors[1]
    held, other_saved = threading.Event(), threading.Event()

    def a_fund_account_being_saved():
        with unit_of_work():
            lock_provider(doctor)
            held.set()
            wait_for_lock_waiters(db.engine)  # the PAN write waits for it
            return other_saved.wait(10)  # and the other edit is saved meanwhile

    def the_pan():
        assert held.wait(10)
        admin = db.session.get(User, world.admin)
        return providers.update_provider(admin, doctor, pan="ABCPR1234L").pan

    def another_doctors_bio():
        assert held.wait(10)
        wait_for_lock_waiters(db.engine)
        admin = db.session.get(User, world.admin)
        try:
            return providers.update_provider(admin, other, bio="Twenty years in practice").bio
        finally:
            other_saved.set()

    results = run_together(
        pg_app, a_fund_account_being_saved, the_pan, another_doctors_bio, timeout=60
    )
    assert results == [True, "ABCPR1234L", "Twenty years in practice"], results
