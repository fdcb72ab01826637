"""Review finding (session 26): the catalog's lock order (fixN, 3c32d3b) takes the ``catalog_version`` row
first and then waits for the edited provider's row while holding it. The provider's row is
also locked ``FOR UPDATE`` outside the catalog: ``payouts.common.lock_provider`` (a bank
account or UPI save, ``fund_accounts.save_bank_account``/``save_vpa``, holds it across its
RazorpayX calls: contact, fund account, validation; 10 s timeout, 3 retries each).

So one doctor's bank-account save that waits on RazorpayX (1) holds up a patient's hold
with that doctor (the booking's ``booking_providers`` row needs ``FOR KEY SHARE``, which
``FOR UPDATE`` refuses) and (2), once an administrator opens that doctor's profile save
(it holds the catalog's stamp while it waits for the row), every other catalog edit of the
clinic too: another doctor's leave waits for a bank the first doctor's save is calling.
Before fixN the admin's save waited for the row without the stamp, and the other doctor's
leave went through."""

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal.accounts.models import User
from portal.booking import visits
from portal.catalog import availability, providers
from portal.catalog.models import Leave, Provider
from portal.extensions import db
from portal.payouts import fund_accounts
from tests.booking.factories import NOW, at, build_world
from tests.threads import run_together

pytestmark = pytest.mark.postgres

LOCK_TIMEOUT = "3s"


@pytest.fixture
def pg_world(pg_app):
    with time_machine.travel(NOW, tick=True):
        with pg_app.app_context():
            world = build_world(registered=True)
            db.session.remove()
        yield world


@pytest.fixture
def bank_save_waiting_on_razorpayx(pg_app, pg_world, monkeypatch):
    """Doctor A's bank account save, its provider row locked, waiting on RazorpayX (its
    gateway calls stand in for a slow answer) until the test lets it go."""
    locked, answer = threading.Event(), threading.Event()

    def slow_register(actor, provider, row, kwargs):
        locked.set()
        answer.wait(30)  # RazorpayX answering slowly (10 s timeout, 3 retries a call)
        return None

    monkeypatch.setattr(fund_accounts, "_register", slow_register)
    doctor = pg_world.doctors[0]

    def save():
        admin = db.session.get(User, pg_world.admin)
        return fund_accounts.save_bank_account(
            admin,
            doctor,
            holder_name="Dr Asha Rao",
            ifsc="HDFC0001234",
            account_number="50100012345678",
        )

    thread_result = {}

    def run():
        with pg_app.app_context():
            try:
                thread_result["saved"] = save()
            except Exception as exc:  # noqa: BLE001 -- reported by the test
                thread_result["saved"] = exc
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    assert locked.wait(10)
    yield doctor, answer
    answer.set()
    thread.join(30)


def _with_lock_timeout(body):
    def run():
        db.session.execute(sa.text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))
        return body()

    return run


def _errors(results):
    return [
        f"{type(r).__name__}: {' '.join(str(r).split())[:400]}"
        for r in results
        if isinstance(r, Exception)
    ]


def test_a_hold_with_a_doctor_waits_for_their_bank_account_save_at_razorpayx(
    pg_app, pg_world, bank_save_waiting_on_razorpayx
):
    doctor, answer = bank_save_waiting_on_razorpayx

    def hold():
        patient = db.session.get(User, pg_world.patients[0])
        try:
            return visits.add_item(
                patient,
                patient_id=patient.id,
                service_id=pg_world.consult,
                provider_ids=[doctor],
                clinic_id=pg_world.clinic,
                start_at=at(1, 10),
            )
        finally:
            answer.set()  # RazorpayX answers once the hold had its chance

    with time_machine.travel(NOW, tick=True):
        results = run_together(pg_app, _with_lock_timeout(hold), timeout=30)
    # A patient's hold must not wait on a bank's answer to a payout account save.
    assert _errors(results) == []


def test_catalog_edits_do_not_wait_for_a_doctors_bank_account_save(
    pg_app, pg_world, bank_save_waiting_on_razorpayx
):
    """While doctor A's bank account save waits on RazorpayX, an admin saves A's profile
    and doctor B adds a leave: neither waits for the bank (the save held A's providers
    row; the admin's save then held the catalog's stamp while waiting for it, and B's
    leave queued behind that)."""
    doctor, answer = bank_save_waiting_on_razorpayx
    other = pg_world.doctors[1]

    def admins_profile_save():
        db.session.execute(sa.text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))
        admin = db.session.get(User, pg_world.admin)
        return providers.update_provider(admin, doctor, bio="Twenty years in family medicine.")

    def other_doctors_leave():
        db.session.execute(sa.text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))
        user = db.session.get(User, db.session.get(Provider, other).user_id)
        start = at(20, 9)
        return availability.add_leave(user, other, start, start + timedelta(hours=4), "Conference")

    try:
        with time_machine.travel(NOW, tick=True):
            results = run_together(pg_app, admins_profile_save, other_doctors_leave, timeout=60)
    finally:
        answer.set()
    assert _errors(results) == []
    with pg_app.app_context():
        assert (
            db.session.scalar(
                sa.select(sa.func.count()).select_from(Leave).where(Leave.provider_id == other)
            )
            == 1
        )
