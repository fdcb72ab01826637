"""Catalog services: validation, audit, availability and leave rules, slot queries."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.catalog import busy
from portal.catalog.availability import (
    add_availability,
    add_leave,
    change_availability,
    remove_availability,
    remove_leave,
    set_availability,
)
from portal.catalog.checks import NotFound, PermissionDenied, ValidationError
from portal.catalog.clinics import create_clinic, create_specialization, update_clinic
from portal.catalog.models import (
    Availability,
    CatalogVersion,
    Clinic,
    Leave,
    Provider,
    Service,
    gstin_checksum,
    gstin_error,
)
from portal.catalog.providers import create_provider, update_provider
from portal.catalog.services import create_service, update_service
from portal.catalog.slots import check_booking_slot, find_offers, next_free_slots, search_providers
from portal.domain.slots import MSG_PROVIDER_UNAVAILABLE, MSG_TAKEN, MSG_WEEKEND
from portal.extensions import db

IST = ZoneInfo("Asia/Kolkata")
UTC = UTC
MONDAY = date(2030, 1, 7)  # a Monday, safely in the future
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def ist(day, hour, minute=0):
    return datetime.combine(day, time(hour, minute), tzinfo=IST).astimezone(UTC)


def user(u):
    return db.session.get(User, u.id)


def actions():
    return [a.action for a in db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))]


# --- GSTIN --------------------------------------------------------------------------------


def test_gstin_format_and_checksum():
    assert gstin_error("29AAGCB7383J1Z4") is None
    assert gstin_error("29AAGCB7383J1Z4", check_checksum=True) is None
    assert gstin_error("29AAGCB7383J1Z5") is None  # format only by default
    assert gstin_error("29AAGCB7383J1Z5", check_checksum=True)
    assert gstin_checksum("27AAPFU0939F1Z") == "V"
    for bad in (
        "",
        "29AAGCB7383J1Z",
        "29aagcb7383j1z4",
        "29AAGCB7383J1X4",
        "99AAGCB7383J1Z4",
        "29AAGC17383J1Z4",
        "29AAGCB7383J0Z4",
    ):
        assert gstin_error(bad), bad


# --- clinics and specializations ----------------------------------------------------------


def test_create_clinic_defaults_and_audit(ctx, admin):
    clinic = create_clinic(
        user(admin), name="  Indiranagar  Clinic ", city="Bengaluru", gstin="29aagcb7383j1z4"
    )
    assert clinic.name == "Indiranagar Clinic"
    assert clinic.timezone == "Asia/Kolkata"
    assert clinic.gstin == "29AAGCB7383J1Z4"
    assert clinic.business_hours() == {d: (time(9), time(18)) for d in range(5)}
    assert actions() == ["clinic.create"]


def test_clinic_validation_messages(ctx, admin):
    with pytest.raises(ValidationError) as exc:
        create_clinic(
            user(admin),
            name="",
            city="Pune",
            timezone="Mars/Olympus",
            gstin="GST123",
            hours={0: (time(18), time(9))},
        )
    assert set(exc.value.errors) == {"name", "timezone", "gstin", "hours_0"}
    create_clinic(user(admin), name="Kothrud Clinic", city="Pune")
    with pytest.raises(ValidationError) as exc:
        create_clinic(user(admin), name="kothrud clinic", city="PUNE")
    assert "already exists" in exc.value.errors["name"]
    assert db.session.scalar(sa.select(sa.func.count(Clinic.id))) == 1


def test_update_clinic_hours_and_audit(ctx, admin):
    clinic = create_clinic(user(admin), name="A", city="Pune")
    update_clinic(user(admin), clinic.id, hours={5: (time(10), time(14))}, active=False)
    clinic = db.session.get(Clinic, clinic.id)
    assert clinic.business_hours() == {5: (time(10), time(14))}
    assert clinic.active is False
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "clinic.update")
    ).one()
    assert entry.before["hours"]["0"] == ["09:00", "18:00"] and "0" not in entry.after["hours"]


def test_only_admins_change_the_catalog(ctx, make_user):
    patient = make_user("patient")
    with pytest.raises(PermissionDenied):
        create_clinic(user(patient), name="A", city="Pune")
    with pytest.raises(PermissionDenied):
        create_specialization(user(patient), "ENT")


def test_specialization_names_are_unique_ignoring_case(ctx, admin):
    create_specialization(user(admin), "Dermatology")
    with pytest.raises(ValidationError) as exc:
        create_specialization(user(admin), "dermatology ")
    assert exc.value.errors == {"name": "This specialization already exists."}


# --- providers and services ---------------------------------------------------------------


def test_create_provider_invites_the_user(ctx, catalog, admin):
    provider = create_provider(
        user(admin),
        email="New.Doc@Example.com",
        name="Kavya Hegde",
        display_name="Dr. Kavya Hegde",
        registration_no="KMC-9",
        clinic_ids=[catalog["indira"]],
        specialization_ids=[catalog["derm"]],
        service_ids=[catalog["skin"]],
    )
    assert provider.user.role == "provider" and provider.user.email == "new.doc@example.com"
    assert provider.user.password_hash is None  # they choose one through the invitation
    assert provider.commission_bps == 500 and provider.payout_schedule == "WEEKLY"
    assert provider.owner_ids() == {provider.user_id}
    assert {"user.invite", "provider.create"} <= set(actions())


def test_provider_validation(ctx, catalog, admin):
    with pytest.raises(ValidationError) as exc:
        create_provider(
            user(admin),
            email="someone@example.com",
            name="X",
            kind="DOCTOR",
            registration_no="",
            clinic_ids=[],
            specialization_ids=[catalog["gm"]],
            service_ids=[catalog["skin"]],
            commission_bps=12_000,
            payout_schedule="DAILY",
        )
    assert set(exc.value.errors) == {
        "registration_no",
        "clinic_ids",
        "service_ids",
        "commission_bps",
        "payout_schedule",
    }
    assert "Skin consultation" in exc.value.errors["service_ids"]
    assert db.session.scalar(sa.select(User).where(User.email == "someone@example.com")) is None


def test_duplicate_provider_email(ctx, catalog, admin):
    with pytest.raises(ValidationError) as exc:
        create_provider(
            user(admin),
            email=catalog["doctor_user"].email,
            name="Y",
            kind="LAB",
            clinic_ids=[catalog["pune"]],
            specialization_ids=[catalog["gm"]],
        )
    assert "email" in exc.value.errors


def test_service_validation(ctx, catalog, admin):
    with pytest.raises(ValidationError) as exc:
        create_service(
            user(admin),
            name="CBC",
            kind="LAB_TEST",
            duration_minutes=0,
            fee_paise=0,
            mode="ONLINE",
            specialization_id=catalog["gm"],
        )
    assert set(exc.value.errors) == {"duration_minutes", "fee_paise", "mode"}
    with pytest.raises(ValidationError) as exc:
        create_service(
            user(admin),
            name="Peel",
            kind="CONSULTATION",
            duration_minutes=45,
            fee_paise=350_000,
            mode="IN_PERSON",
            specialization_id=catalog["derm"],
            provider_ids=[catalog["doctor"]],
        )
    assert "Dr. Asha Rao" in exc.value.errors["provider_ids"]
    with pytest.raises(ValidationError):  # money is int paise, never a float
        create_service(
            user(admin),
            name="Peel",
            kind="CONSULTATION",
            duration_minutes=45,
            fee_paise=3500.5,
            mode="IN_PERSON",
            specialization_id=catalog["derm"],
        )


def test_update_service(ctx, catalog, admin):
    update_service(user(admin), catalog["skin"], fee_paise=90_000, taxable=True)
    row = db.session.get(Service, catalog["skin"])
    assert (row.fee_paise, row.taxable, row.name) == (90_000, True, "Skin consultation")
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "service.update")
    ).one()
    assert (entry.before["fee_paise"], entry.after["fee_paise"]) == (80_000, 90_000)


def test_database_refuses_a_zero_fee_and_backwards_hours(ctx, catalog):
    db.session.add(
        Service(
            name="Free",
            kind="CONSULTATION",
            duration_minutes=10,
            fee_paise=0,
            mode="IN_PERSON",
            specialization_id=catalog["gm"],
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()
    db.session.add(
        Availability(
            provider_id=catalog["doctor"],
            clinic_id=catalog["indira"],
            weekday=5,
            start_time=time(12),
            end_time=time(10),
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()


# --- availability and leave ---------------------------------------------------------------


def test_add_availability_rules(ctx, catalog):
    doctor = user(catalog["doctor_user"])
    window = add_availability(doctor, catalog["doctor"], catalog["jaya"], 0, time(14), time(18))
    assert window.provider_id == catalog["doctor"]
    cases = [
        ((catalog["jaya"], 0, time(12), time(15)), "start_time", "Overlaps Monday 09:00–13:00"),
        ((catalog["jaya"], 5, time(10), time(12)), "weekday", "closed on Saturdays"),
        ((catalog["jaya"], 1, time(8), time(12)), "start_time", "open 09:00–18:00 on Tuesdays"),
        ((catalog["pune"], 1, time(10), time(12)), "clinic_id", "provider's clinics"),
        ((catalog["jaya"], 1, time(12), time(10)), "end_time", "End after the start"),
    ]
    for args, field, text in cases:
        with pytest.raises(ValidationError) as exc:
            add_availability(doctor, catalog["doctor"], *args)
        assert text in exc.value.errors[field], (args, exc.value.errors)


def test_a_provider_cannot_touch_another_providers_rows(ctx, catalog):
    other = user(catalog["other_user"])
    with pytest.raises(NotFound):
        add_availability(other, catalog["doctor"], catalog["indira"], 4, time(14), time(15))
    window = db.session.scalars(
        sa.select(Availability).where(Availability.provider_id == catalog["doctor"])
    ).first()
    with pytest.raises(NotFound):
        remove_availability(other, window.id)
    with pytest.raises(NotFound):
        add_leave(other, catalog["doctor"], NOW, NOW + timedelta(days=1))


def test_set_availability_replaces_one_clinic(ctx, catalog, admin):
    set_availability(
        user(admin),
        catalog["doctor"],
        catalog["jaya"],
        [(1, time(14), time(18)), (3, time(14), time(18))],
    )
    set_availability(user(admin), catalog["doctor"], catalog["jaya"], [(2, time(14), time(16))])
    rows = db.session.scalars(
        sa.select(Availability).where(Availability.provider_id == catalog["doctor"])
    ).all()
    assert sorted((r.clinic_id == catalog["jaya"], r.weekday) for r in rows) == [
        (False, 0),
        (False, 1),
        (False, 2),
        (False, 3),
        (False, 4),
        (True, 2),
    ]
    with pytest.raises(ValidationError) as exc:
        set_availability(
            user(admin),
            catalog["doctor"],
            catalog["jaya"],
            [(2, time(14), time(16)), (2, time(15), time(17))],
        )
    assert list(exc.value.errors) == ["window_1"]


def test_set_availability_may_keep_a_windows_start(ctx, catalog, admin):
    """A day shortened (or saved again) keeps its start: the old window goes before the new
    one comes, or the unique (weekday, start) refused it (review finding)."""
    hours = [(2, time(14), time(18))]
    set_availability(user(admin), catalog["doctor"], catalog["jaya"], hours)
    set_availability(user(admin), catalog["doctor"], catalog["jaya"], hours)  # saved again
    set_availability(user(admin), catalog["doctor"], catalog["jaya"], [(2, time(14), time(16))])
    rows = db.session.scalars(
        sa.select(Availability).where(
            Availability.provider_id == catalog["doctor"],
            Availability.clinic_id == catalog["jaya"],
        )
    ).all()
    assert [(r.weekday, r.start_time, r.end_time) for r in rows] == [(2, time(14), time(16))]


def _doctors_window(catalog, weekday):
    return db.session.scalar(
        sa.select(Availability).where(
            Availability.provider_id == catalog["doctor"], Availability.weekday == weekday
        )
    )


def test_change_availability_narrows_and_widens_a_window(ctx, catalog):
    """A doctor changes one window's hours (Monday 09–13 at Indiranagar) in place: its day
    and clinic stay, an audit row says before and after, and the catalog's stamp moves
    (the free-times cache's answers showing the old hours are no longer served)."""
    doctor = user(catalog["doctor_user"])
    window = _doctors_window(catalog, 0)
    window_id, stamp = window.id, db.session.scalar(sa.select(CatalogVersion.stamp))
    changed = change_availability(doctor, window, time(10), time(12, 30))
    assert changed.id == window_id
    db.session.expire_all()
    window = db.session.get(Availability, window_id)
    assert (window.weekday, window.clinic_id, window.start_time, window.end_time) == (
        0,
        catalog["indira"],
        time(10),
        time(12, 30),
    )
    assert db.session.scalar(sa.select(CatalogVersion.stamp)) != stamp
    entry = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry.action == "availability.change" and entry.object_id == str(catalog["doctor"])
    assert entry.before == {"id": window_id, "start": "09:00:00", "end": "13:00:00"}
    assert entry.after["start"] == "10:00:00" and entry.after["end"] == "12:30:00"
    change_availability(doctor, window_id, time(9), time(18))  # the clinic's whole day
    assert db.session.get(Availability, window_id).end_time == time(18)
    assert len(db.session.get(Provider, catalog["doctor"]).availability) == 5


def test_change_availability_is_checked_as_an_added_window(ctx, catalog):
    doctor = user(catalog["doctor_user"])
    monday = add_availability(doctor, catalog["doctor"], catalog["jaya"], 0, time(14), time(18))
    window = _doctors_window(catalog, 1)  # Tuesday 09–13 at Indiranagar
    cases = [
        ((time(12), time(10)), "end_time", "End after the start."),
        ((time(10), time(10)), "end_time", "End after the start."),
        ((None, time(12)), "start_time", "Enter the start and end times."),
        ((time(8), time(12)), "start_time", "open 09:00–18:00 on Tuesdays"),
        ((time(10), time(19)), "start_time", "open 09:00–18:00 on Tuesdays"),
    ]
    for (start, end), field, text in cases:
        with pytest.raises(ValidationError) as exc:
            change_availability(doctor, window, start, end)
        assert text in exc.value.errors[field], (start, end, exc.value.errors)
    # Monday 09–13 at Indiranagar widened over Monday 14–18 at Jayanagar: an overlap,
    # named with its clinic; up to 14:00 (touching): changed.
    with pytest.raises(ValidationError) as exc:
        change_availability(doctor, _doctors_window(catalog, 0), time(9), time(15))
    assert exc.value.errors == {"start_time": "Overlaps Monday 14:00–18:00 at Jayanagar Clinic."}
    change_availability(doctor, _doctors_window(catalog, 0), time(9), time(14))
    # Its own hours are no overlap: a window shortened inside itself.
    change_availability(doctor, monday, time(15), time(18))
    db.session.expire_all()
    rows = db.session.scalars(
        sa.select(Availability).where(
            Availability.provider_id == catalog["doctor"], Availability.weekday.in_([0, 1])
        )
    ).all()
    assert sorted((r.weekday, r.start_time, r.end_time) for r in rows) == [
        (0, time(9), time(14)),
        (0, time(15), time(18)),
        (1, time(9), time(13)),
    ]
    assert actions()[-2:] == ["availability.change", "availability.change"]


def test_a_provider_cannot_change_another_providers_window(ctx, catalog, admin):
    window = _doctors_window(catalog, 2)
    with pytest.raises(NotFound):
        change_availability(user(catalog["other_user"]), window.id, time(10), time(12))
    with pytest.raises(NotFound):
        change_availability(user(catalog["doctor_user"]), 10_000, time(10), time(12))
    db.session.rollback()
    assert _doctors_window(catalog, 2).start_time == time(9)
    change_availability(user(admin), window.id, time(10), time(12))  # an admin may
    assert _doctors_window(catalog, 2).start_time == time(10)


def test_leave_rules(ctx, catalog):
    doctor = user(catalog["doctor_user"])
    start = datetime.now(UTC) + timedelta(days=2)
    leave = add_leave(doctor, catalog["doctor"], start, start + timedelta(hours=4), "Conference")
    assert leave.owner_ids() == {catalog["doctor_user"].id}
    with pytest.raises(ValidationError) as exc:
        add_leave(doctor, catalog["doctor"], start, start - timedelta(hours=1))
    assert exc.value.errors == {"ends_at": "End after the start."}
    past = datetime.now(UTC) - timedelta(days=3)
    with pytest.raises(ValidationError) as exc:
        add_leave(doctor, catalog["doctor"], past, past + timedelta(days=1))
    assert exc.value.errors == {"ends_at": "Leave must end in the future."}
    remove_leave(doctor, leave.id)
    assert db.session.scalar(sa.select(sa.func.count(Leave.id))) == 0
    assert actions()[-2:] == ["leave.add", "leave.remove"]


def test_a_leave_overlapping_another_of_the_same_provider_is_refused(ctx, catalog, admin):
    """A second leave over the first was accepted: two rows for one absence, and removing
    one left the other behind. The refusal names the leave already there, in the time the
    new one was entered in."""
    doctor, monday, tuesday = user(catalog["doctor_user"]), MONDAY, MONDAY + timedelta(days=1)
    add_leave(doctor, catalog["doctor"], ist(monday, 9), ist(tuesday, 18), "Conference")
    named = (
        "This overlaps the leave already added from Mon 07 Jan 2030, 09:00 to "
        "Tue 08 Jan 2030, 18:00."
    )
    sunday, wednesday = MONDAY - timedelta(days=1), MONDAY + timedelta(days=2)
    overlapping = [
        (ist(tuesday, 17), ist(wednesday, 12)),  # over its end
        (ist(sunday, 9), ist(monday, 10)),  # over its start
        (ist(monday, 12), ist(monday, 13)),  # inside it
        (ist(sunday, 9), ist(wednesday, 9)),  # around it
        (ist(monday, 9), ist(tuesday, 18)),  # the same again
    ]
    for starts, ends in overlapping:
        for actor in (doctor, user(admin)):
            with pytest.raises(ValidationError) as exc:
                add_leave(actor, catalog["doctor"], starts.astimezone(IST), ends.astimezone(IST))
            assert exc.value.errors == {"starts_at": named}
            db.session.rollback()
    # Half-open periods: a leave ending when the first starts, or starting when it ends.
    add_leave(doctor, catalog["doctor"], ist(sunday, 9), ist(monday, 9))
    add_leave(doctor, catalog["doctor"], ist(tuesday, 18), ist(wednesday, 18))
    # Another provider's leave over the same days is theirs.
    add_leave(user(admin), catalog["other"], ist(monday, 9), ist(tuesday, 18))
    assert db.session.scalar(sa.select(sa.func.count(Leave.id))) == 4
    assert actions().count("leave.add") == 4


# --- queries ------------------------------------------------------------------------------


def names(providers):
    return [p.display_name for p in providers]


def test_search_providers_filters(ctx, catalog):
    assert names(search_providers()) == ["Dr. Asha Rao", "Dr. Vikram Nair"]
    assert names(search_providers(city="bengaluru")) == ["Dr. Asha Rao"]
    assert names(search_providers(clinic_id=catalog["pune"])) == ["Dr. Vikram Nair"]
    assert names(search_providers(specialization_id=catalog["derm"])) == ["Dr. Vikram Nair"]
    assert names(search_providers(service_id=catalog["consult"])) == ["Dr. Asha Rao"]
    assert names(search_providers(text="skin")) == ["Dr. Vikram Nair"]
    assert names(search_providers(text="general med")) == ["Dr. Asha Rao"]
    assert names(search_providers(text="asha", city="Pune")) == []
    # "%" and "_" are characters, not wildcards (portal.db.contains_text)
    assert names(search_providers(text="a_ha")) == []
    assert names(search_providers(text="%rao")) == []


def test_search_hides_inactive_providers_and_clinics(ctx, catalog, admin):
    update_provider(user(admin), catalog["other"], active=False)
    update_clinic(user(admin), catalog["indira"], active=False)
    assert names(search_providers()) == ["Dr. Asha Rao"]  # still at Jayanagar
    assert names(search_providers(clinic_id=catalog["indira"])) == []


def _slots(catalog, **kw):
    provider = db.session.get(Provider, catalog["doctor"])
    args = dict(from_date=MONDAY, days=1, limit=None, now=NOW)
    args.update(kw)
    return next_free_slots(
        provider,
        db.session.get(Service, catalog["consult"]),
        db.session.get(Clinic, catalog["indira"]),
        **args,
    )


def test_next_free_slots_within_hours_and_around_leave(ctx, catalog):
    slots = _slots(catalog)
    assert [s.astimezone(IST).strftime("%H:%M") for s in slots] == [
        "09:00",
        "09:30",
        "10:00",
        "10:30",
        "11:00",
        "11:30",
        "12:00",
        "12:30",
    ]
    db.session.add(
        Leave(provider_id=catalog["doctor"], starts_at=ist(MONDAY, 10), ends_at=ist(MONDAY, 11, 15))
    )
    db.session.commit()
    slots = _slots(catalog)
    assert [s.astimezone(IST).strftime("%H:%M") for s in slots] == [
        "09:00",
        "09:30",
        "11:30",
        "12:00",
        "12:30",
    ]
    weekend = _slots(catalog, from_date=MONDAY + timedelta(days=5), days=2)
    assert weekend == []
    assert len(_slots(catalog, days=7, limit=3)) == 3


def test_lead_time_and_the_past(ctx, catalog, app):
    now = ist(MONDAY, 10, 10)
    slots = _slots(catalog, now=now)
    assert slots[0] == ist(MONDAY, 11, 30)  # 60 minutes' lead by default, on the grid
    app.config["SLOT_MIN_LEAD_MINUTES"] = 0
    try:
        assert _slots(catalog, now=now)[0] == ist(MONDAY, 10, 30)
    finally:
        del app.config["SLOT_MIN_LEAD_MINUTES"]
    assert _slots(catalog, from_date=MONDAY - timedelta(days=7), days=1, now=now) == []


@pytest.fixture
def fake_bookings():
    intervals = []

    @busy.source("test-bookings")
    def _source(provider_ids, start, end):
        return [iv for iv in intervals if iv[0] in provider_ids]

    yield intervals
    busy.unregister("test-bookings")


def test_busy_sources_block_slots(ctx, catalog, fake_bookings):
    fake_bookings.append((catalog["doctor"], ist(MONDAY, 9), ist(MONDAY, 10)))
    fake_bookings.append((catalog["other"], ist(MONDAY, 11), ist(MONDAY, 12)))
    slots = [s.astimezone(IST).strftime("%H:%M") for s in _slots(catalog)]
    assert slots[0] == "10:00" and "11:00" in slots
    got = busy.busy_intervals({catalog["doctor"], 999}, ist(MONDAY, 0), ist(MONDAY, 23))
    assert got == {catalog["doctor"]: [(ist(MONDAY, 9), ist(MONDAY, 10))], 999: []}


def test_a_query_source_registered_later_is_read(ctx, catalog):
    """The slot lookup's one query is built once, on bind parameters; registering or
    removing a query source builds it again (``busy.generation``)."""
    first = _slots(catalog)[0]  # the query is built here, with the bookings' source only
    doctor, at = catalog["doctor"], Leave.starts_at.type

    @busy.query_source("test-held")
    def _held(w):
        return sa.select(
            sa.literal(doctor).label("provider_id"),
            sa.literal(first, at).label("starts_at"),
            sa.literal(first + timedelta(minutes=30), at).label("ends_at"),
        ).where(sa.literal(doctor).in_(w.provider_ids))

    try:
        assert first not in _slots(catalog)
        busy_now = busy.busy_intervals([doctor], first, first + timedelta(hours=1))
        assert busy_now == {doctor: [(first, first + timedelta(minutes=30))]}
    finally:
        busy.unregister("test-held")
    assert _slots(catalog)[0] == first


def test_check_booking_slot_messages(ctx, catalog, fake_bookings):
    doctor = db.session.get(Provider, catalog["doctor"])
    consult = db.session.get(Service, catalog["consult"])
    indira = db.session.get(Clinic, catalog["indira"])

    def check(start, **kw):
        return check_booking_slot([doctor], consult, indira, start, now=NOW, **kw)

    assert check(ist(MONDAY, 9)) == []
    assert check(ist(MONDAY + timedelta(days=5), 10)) == [MSG_WEEKEND]
    assert check(ist(MONDAY, 18)) == ["Appointments only available 9 AM - 6 PM"]
    assert check(ist(MONDAY, 14)) == [MSG_PROVIDER_UNAVAILABLE]
    booked = (catalog["doctor"], ist(MONDAY, 9), ist(MONDAY, 9, 30))
    fake_bookings.append(booked)
    assert check(ist(MONDAY, 9)) == [MSG_TAKEN]
    assert check(ist(MONDAY, 9), exclude=[booked]) == []  # moving that very booking
    skin = db.session.get(Service, catalog["skin"])
    assert check_booking_slot([doctor], skin, indira, ist(MONDAY, 9), now=NOW) == [
        MSG_PROVIDER_UNAVAILABLE
    ]  # not a service this doctor offers


@pytest.mark.norollback  # counts statements: no SAVEPOINTs of the rollback fixture
def test_find_offers_uses_a_fixed_number_of_queries(ctx, catalog, admin):
    indira = db.session.get(Clinic, catalog["indira"])
    consult = db.session.get(Service, catalog["consult"])
    for i in range(6):  # more providers must not mean more queries
        u = User(email=f"lab{i}@example.com", name=f"Lab {i}", role="provider")
        p = Provider(user=u, kind="LAB", display_name=f"Lab {i}")
        p.clinics, p.services = [indira], [consult]
        p.specializations = [consult.specialization]
        p.availability = [
            Availability(clinic=indira, weekday=0, start_time=time(9), end_time=time(10))
        ]
        db.session.add(p)
    db.session.commit()
    db.session.expire_all()
    statements = []

    def count(*_args):
        statements.append(1)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        providers = search_providers()
        offers = find_offers(providers, from_date=MONDAY, days=7, now=NOW)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(providers) == 8
    assert len(statements) <= 8, len(statements)
    assert len(offers[catalog["doctor"]]) == 2  # one service at two clinics
    assert len(offers[catalog["other"]]) == 1
    assert all(
        len(o.slots) == 4 for o in offers[catalog["doctor"]] if o.clinic.id == catalog["indira"]
    )
