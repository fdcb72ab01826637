"""Deactivating a patient's account (the admin's Users page) is refused while they have
appointments held, booked or under way, or a visit waiting for payment: the rule a
patient's own closure refuses by (``booking.queries.open_business``), so the patient can
still see, move or cancel them and is still reminded (review: a patient deactivated over
paid bookings ahead could not sign in, got no reminders, and the doctor still expected
them). Money alone (a wallet balance, a refund on its way) does not stop it: a
deactivation is undone by a reactivation (docs/decisions.md)."""

import pytest
import sqlalchemy as sa
import time_machine

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.booking import visits
from portal.booking.errors import AccountDeactivated
from portal.booking.models import MasterBooking
from portal.extensions import db
from tests.booking.factories import (
    NOW,
    at,
    build_world,
    credit_wallet,
    quoted_desk_payment,
)
from tests.plugin import sign_in
from tests.refunds.helpers import quoted_admin_cancel


@pytest.fixture
def world(app, ctx):
    with time_machine.travel(NOW, tick=True):
        yield build_world()


def _user(user_id):
    return db.session.get(User, user_id)


def _hold(world, patient_id, day=1, hour=10, dependent_id=None):
    admin = _user(world.admin)
    return visits.add_item(
        admin,
        patient_id=patient_id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(day, hour),
        dependent_id=dependent_id,
    )


def _booked(world, patient_id, day=1, hour=10, dependent_id=None):
    item = _hold(world, patient_id, day=day, hour=hour, dependent_id=dependent_id)
    quoted_desk_payment(_user(world.admin), item.master_id, f"R-{item.id}")
    return item


def _number(item):
    return db.session.get(MasterBooking, item.master_id).number


def _refused(world, patient_id):
    with pytest.raises(accounts.ValidationError) as refused:
        accounts.deactivate_user(_user(world.admin), patient_id)
    db.session.rollback()
    db.session.expire_all()
    assert _user(patient_id).active is True
    audit = db.session.scalars(
        sa.select(AuditEntry.action).where(
            AuditEntry.object_type == "user", AuditEntry.object_id == str(patient_id)
        )
    ).all()
    assert "user.deactivate" not in audit
    [message] = refused.value.errors.values()
    return str(message)


def test_a_patient_with_paid_bookings_ahead_is_not_deactivated(world):
    uid = world.patients[1]
    first = _booked(world, uid, day=1)
    second = _booked(world, uid, day=2)
    message = _refused(world, uid)
    assert "2 visits" in message
    assert _number(first) in message and _number(second) in message
    assert "for the clinic" in message and "then deactivate" in message


def test_a_hold_awaiting_payment_stops_it_too(world):
    uid = world.patients[1]
    item = _hold(world, uid)
    message = _refused(world, uid)
    assert "1 visit " in message and _number(item) in message


def test_a_dependents_booking_is_the_guardians(world):
    guardian = world.patients[0]
    item = _booked(world, guardian, dependent_id=world.child)
    assert _number(item) in _refused(world, guardian)


def test_once_cancelled_for_the_clinic_the_patient_is_deactivated_money_or_not(world):
    """The admin's way out the message names: cancel for the clinic (refunded in full,
    here to the wallet), then deactivate. The wallet's balance does not stop it."""
    uid = world.patients[1]
    item = _booked(world, uid)
    credit_wallet(uid, 10_000)
    _refused(world, uid)
    quoted_admin_cancel(_user(world.admin), item.id, "Patient moving away", mode="clinic")
    db.session.commit()
    accounts.deactivate_user(_user(world.admin), uid)
    db.session.expire_all()
    assert _user(uid).active is False


def test_a_hold_that_read_the_account_active_is_refused_after_the_deactivation(world, monkeypatch):
    """The desk's hold read the patient as active (its request began before the
    deactivation committed); the deactivation commits; the hold's claim is then refused,
    by the claims' trigger (PostgreSQL) or the check under the claims' lock (SQLite),
    saying the account was deactivated, and nothing is booked."""
    uid = world.patients[1]
    stale = _user(uid)
    monkeypatch.setattr(visits, "check_person", lambda actor, pid, dep: (stale, None))
    accounts.deactivate_user(_user(world.admin), uid)
    db.session.commit()
    with pytest.raises(AccountDeactivated):
        _hold(world, uid)
    db.session.rollback()
    count = db.session.scalar(
        sa.select(sa.func.count(MasterBooking.id)).where(MasterBooking.patient_id == uid)
    )
    assert count == 0


def test_the_users_page_says_how_many_and_what_to_do(app, world):
    uid = world.patients[1]
    item = _booked(world, uid)
    admin = _user(world.admin)
    admin.password_hash = accounts.hash_password("admin pass words 1")
    db.session.commit()
    client = sign_in(app, admin, password="admin pass words 1")
    response = client.post(f"/admin/users/{uid}/deactivate", data={"next": "/admin/users?q=p"})
    text = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "1 visit " in text and _number(item) in text
    assert "Cancel them for the clinic" in text
    assert 'href="/admin/users?q=p"' in text  # back to the list as the admin left it
    db.session.expire_all()
    assert _user(uid).active is True


def test_an_emptied_draft_visit_does_not_block_deactivation_forever(world):
    """Review rv_late: the desk held a time for the patient, then took it out again
    (``remove_item``): the visit is left DRAFT with no items, nothing held, nothing to
    pay, nothing to cancel. Counted as "waiting for payment", it refused the deactivation
    for good: nothing the message says (cancel for the clinic, complete) could clear it."""
    uid = world.patients[1]
    admin = _user(world.admin)
    item = visits.add_item(
        admin,
        patient_id=uid,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    master_id = item.master_id
    visits.remove_item(_user(world.admin), item.id)
    db.session.commit()
    visit = db.session.get(MasterBooking, master_id)
    assert visit is not None and not visit.items
    accounts.deactivate_user(_user(world.admin), uid)
    db.session.commit()
    db.session.expire_all()
    assert _user(uid).active is False


def test_an_emptied_draft_visit_does_not_block_the_patients_own_closure(world):
    """Review rv_late, the patient's side: their own account closure listed the empty
    visit as "waiting for payment", with nothing they could pay or cancel."""
    from portal.privacy import closure

    uid = world.patients[1]
    item = visits.add_item(
        _user(world.admin),
        patient_id=uid,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    visits.remove_item(_user(world.admin), item.id)
    db.session.commit()
    assert closure.blockers(uid) == []
