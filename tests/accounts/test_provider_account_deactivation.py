"""Deactivating a provider's account (the admin's Users page) follows the rule of
deactivating their profile (the catalog's provider page): refused over bookings ahead, and
once done the provider is off the booking pages (review rev6)."""

import pytest
import sqlalchemy as sa
import time_machine

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.booking import visits
from portal.booking.errors import BookingError
from portal.catalog import queries as catalog_queries
from portal.catalog.models import Provider
from portal.catalog.providers import update_provider
from portal.extensions import db
from tests.booking.factories import NOW, at, build_world, quoted_desk_payment
from tests.plugin import sign_in


@pytest.fixture
def world(app, ctx):
    with time_machine.travel(NOW, tick=True):
        yield build_world()


def _user(user_id):
    return db.session.get(User, user_id)


def _hold(world, patient_id, doctor_id, day=1, hour=10):
    patient = _user(patient_id)
    return visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[doctor_id],
        clinic_id=world.clinic,
        start_at=at(day, hour),
    )


def _booked(world, patient_id, doctor_id, day=1, hour=10):
    """A booking paid at the desk (an unpaid hold is named apart in the refusal)."""
    item = _hold(world, patient_id, doctor_id, day=day, hour=hour)
    quoted_desk_payment(_user(world.admin), item.master_id, f"R-{item.id}")
    return item


def test_deactivating_a_doctors_account_takes_the_doctor_off_the_booking_pages(world):
    """Review rev6: deactivating Dr Doc 1's account flipped only users.active: the doctor
    stayed listed, bookable and payable, though nobody could sign in to start the visit.
    Now the account's deactivation deactivates the profile too (what the booking pages
    and the claims' trigger read)."""
    doctor = db.session.get(Provider, world.doctors[0])
    accounts.deactivate_user(_user(world.admin), doctor.user_id)
    db.session.expire_all()
    assert _user(doctor.user_id).active is False
    assert db.session.get(Provider, world.doctors[0]).active is False
    assert doctor.id not in [p.id for p in catalog_queries.active_providers()]
    with pytest.raises(BookingError):
        _hold(world, world.patients[0], doctor.id)
    audit = db.session.query(AuditEntry).filter_by(object_type="provider", object_id=str(doctor.id))
    assert [(e.action, e.after.get("active")) for e in audit] == [("provider.update", False)]


def test_deactivating_a_doctors_account_over_bookings_ahead_is_refused(world):
    """Review rev6: deactivating the profile over a booking ahead is refused; deactivating
    the same doctor's account succeeded silently, leaving the patient with a doctor who
    cannot sign in. Now both are refused with the same message, and nothing changes."""
    _booked(world, world.patients[1], world.doctors[0])
    doctor = db.session.get(Provider, world.doctors[0])
    with pytest.raises(accounts.ValidationError) as profile:
        update_provider(_user(world.admin), doctor, active=False, registration_no="KMC-4242")
    db.session.rollback()
    with pytest.raises(accounts.ValidationError) as account:
        accounts.deactivate_user(_user(world.admin), doctor.user_id)
    db.session.rollback()
    [message] = account.value.errors.values()
    assert str(message) == str(profile.value.errors["active"])
    assert "1 booking with this provider ahead" in str(message)
    db.session.expire_all()
    assert _user(doctor.user_id).active is True
    assert db.session.get(Provider, world.doctors[0]).active is True


def test_an_inactive_profile_does_not_stop_the_account_being_deactivated(world):
    """A profile already inactive (no bookings can be in its way) is left as it is."""
    admin = _user(world.admin)
    doctor = db.session.get(Provider, world.doctors[0])
    update_provider(admin, doctor, active=False, registration_no="KMC-4242")
    accounts.deactivate_user(_user(world.admin), doctor.user_id)
    db.session.expire_all()
    assert _user(doctor.user_id).active is False


def test_reactivating_the_account_leaves_the_profile_inactive(world):
    """Reactivating the account lets the provider sign in again; putting them back on the
    booking pages is the catalog's decision (the provider page's "active")."""
    doctor = db.session.get(Provider, world.doctors[0])
    accounts.deactivate_user(_user(world.admin), doctor.user_id)
    accounts.reactivate_user(_user(world.admin), doctor.user_id)
    db.session.expire_all()
    assert _user(doctor.user_id).active is True
    assert db.session.get(Provider, world.doctors[0]).active is False
    update_provider(
        _user(world.admin),
        db.session.get(Provider, world.doctors[0]),
        active=True,
        registration_no="KMC-4242",
    )
    assert doctor.id in [p.id for p in catalog_queries.active_providers()]


def test_the_users_page_shows_the_refusal(app, world):
    """The Users page's "Deactivate" over a booking ahead: the message, not a 500."""
    _booked(world, world.patients[1], world.doctors[0])
    doctor_user_id = db.session.get(Provider, world.doctors[0]).user_id
    admin = _user(world.admin)
    admin.password_hash = accounts.hash_password("admin pass words 1")
    db.session.commit()
    client = sign_in(app, admin, password="admin pass words 1")
    response = client.post(f"/admin/users/{doctor_user_id}/deactivate", follow_redirects=True)
    assert response.status_code == 200
    assert "1 booking with this provider ahead" in response.get_data(as_text=True)
    db.session.expire_all()
    assert _user(doctor_user_id).active is True


def _free_in_another_thread():
    import threading

    from portal.catalog import time_lock

    answer = []

    def probe():
        got = time_lock.SQLITE_LOCK.acquire(blocking=False)
        if got:
            time_lock.SQLITE_LOCK.release()
        answer.append(got)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(5)
    return answer == [True]


def _time_lock_free(provider_id):
    """Could another session take the lock on the provider's time now? (PostgreSQL: its
    advisory lock, from another connection; SQLite: the process lock, from another
    thread.)"""
    from portal.catalog import time_lock

    if not time_lock.is_postgres():
        return _free_in_another_thread()
    with db.engine.connect() as other:
        got = other.scalar(
            sa.text("SELECT pg_try_advisory_xact_lock(hashtextextended(:s, 0))"),
            {"s": time_lock.provider_subject(provider_id)},
        )
        other.rollback()
    return got


@pytest.mark.norollback  # its commits must be real: a lock let go at the end of one
def test_the_lock_on_the_providers_time_is_let_go_at_the_end(world, monkeypatch):
    """The account's deactivation holds the lock on the provider's time from its check to
    its commit (or rollback), and not a moment longer: a hold in another session could
    otherwise never be made again. Checked on either database (review of the tests: it
    probed SQLite's lock alone, so on PostgreSQL it passed whatever the code did)."""
    from portal.catalog import providers as catalog_providers

    held = []
    real = catalog_providers._deactivation_refused

    def refused_and_probed(provider):
        answer = real(provider)
        held.append(not _time_lock_free(provider.id))
        return answer

    monkeypatch.setattr(catalog_providers, "_deactivation_refused", refused_and_probed)
    _hold(world, world.patients[1], world.doctors[1])
    refused = db.session.get(Provider, world.doctors[1]).user_id
    with pytest.raises(accounts.ValidationError):
        accounts.deactivate_user(_user(world.admin), refused)
    assert _time_lock_free(world.doctors[1])
    done = db.session.get(Provider, world.doctors[0]).user_id
    accounts.deactivate_user(_user(world.admin), done)
    assert _time_lock_free(world.doctors[0])
    assert held == [True, True]  # taken for each check, so letting it go means something


def test_a_profile_cannot_be_reactivated_while_its_account_is_deactivated(world):
    """Review rev8: the provider page's "active" put the profile back on the booking pages
    while the account stayed deactivated (a doctor listed and bookable whom nobody can sign
    in as). Now it is refused on the "active" field and nothing changes; once the account
    is reactivated (the Users page) the profile can be."""
    doctor = db.session.get(Provider, world.doctors[0])
    doctor_id, login = doctor.id, doctor.user_id
    accounts.deactivate_user(_user(world.admin), login)
    with pytest.raises(accounts.ValidationError) as refused:
        update_provider(
            _user(world.admin),
            doctor_id,
            active=True,
            bio="Back from leave.",
            registration_no="KMC-4242",
        )
    db.session.rollback()
    assert "Reactivate their account on the Users page first." in str(
        refused.value.errors["active"]
    )
    db.session.expire_all()
    assert db.session.get(Provider, doctor_id).active is False
    assert db.session.get(Provider, doctor_id).bio != "Back from leave."
    assert doctor_id not in [p.id for p in catalog_queries.active_providers()]
    with pytest.raises(BookingError):
        _hold(world, world.patients[0], doctor_id)
    db.session.rollback()
    # Anything else on the inactive profile may still be changed.
    update_provider(
        _user(world.admin), doctor_id, active=False, bio="On sabbatical.", registration_no="KMC-1"
    )
    db.session.expire_all()
    assert db.session.get(Provider, doctor_id).bio == "On sabbatical."
    accounts.reactivate_user(_user(world.admin), login)
    update_provider(_user(world.admin), doctor_id, active=True, registration_no="KMC-1")
    db.session.expire_all()
    assert doctor_id in [p.id for p in catalog_queries.active_providers()]
