"""A small world for the notification tests: one clinic (IST), a service, two doctors,
a patient with a child, an admin; and confirmed bookings made directly as rows."""

from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from portal.accounts.models import Dependent, User
from portal.booking.models import IndividualBooking, MasterBooking
from portal.catalog.models import Clinic, ClinicHours, Provider, Service, Specialization
from portal.extensions import db

IST = ZoneInfo("Asia/Kolkata")
# Monday 1 June 2026, 08:00 IST: tests travel here.
NOW = datetime(2026, 6, 1, 8, 0, tzinfo=IST).astimezone(UTC)


def _user(role, email, name, phone="+919812345678"):
    user = User(email=email, name=name, role=role, phone=phone, password_hash=None)
    db.session.add(user)
    return user


def build_world(tag=""):
    clinic = Clinic(name=f"Indiranagar Clinic{tag}", city="Bengaluru", address="100 Ft Rd")
    clinic.hours = [ClinicHours(weekday=d, opens=time(9), closes=time(18)) for d in range(5)]
    gp = Specialization(name=f"General Medicine{tag}")
    db.session.add_all([clinic, gp])
    consult = Service(
        name="Consultation",
        kind="CONSULTATION",
        duration_minutes=30,
        fee_paise=50_000,
        mode="IN_PERSON",
        specialization=gp,
    )
    db.session.add(consult)
    admin = _user("admin", f"admin{tag}@example.com", "Admin One")
    admin2 = _user("admin", f"admin2{tag}@example.com", "Admin Two")
    patient = _user("patient", f"patient{tag}@example.com", "Priya Patient")
    doctors = []
    for i in (1, 2):
        u = _user("provider", f"doc{i}{tag}@example.com", f"Dr Doc {i}", phone=None)
        p = Provider(user=u, kind="DOCTOR", display_name=f"Dr Doc {i}{tag}")
        p.clinics, p.specializations, p.services = [clinic], [gp], [consult]
        doctors.append(p)
    db.session.add_all(doctors)
    db.session.flush()
    child = Dependent(guardian_id=patient.id, name="Little One", relationship_="child")
    db.session.add(child)
    db.session.commit()
    return SimpleNamespace(
        clinic=clinic.id,
        consult=consult.id,
        admin=admin.id,
        admin2=admin2.id,
        patient=patient.id,
        child=child.id,
        doctors=[d.id for d in doctors],
        doctor_users=[d.user_id for d in doctors],
    )


_counter = {"n": 0}


def make_booking(world, start, *, providers=None, status="CONFIRMED", dependent=False, minutes=30):
    """A visit with one individual booking at ``start`` (aware), committed; returns its id."""
    _counter["n"] += 1
    visit = MasterBooking(
        number=f"V{_counter['n']:05d}",
        patient_id=world.patient,
        dependent_id=world.child if dependent else None,
        created_by_id=world.patient,
        status="CONFIRMED" if status == "CONFIRMED" else "PENDING_PAYMENT",
    )
    db.session.add(visit)
    db.session.flush()
    item = IndividualBooking(
        master_id=visit.id,
        service_id=world.consult,
        clinic_id=world.clinic,
        start_at=start,
        end_at=start + timedelta(minutes=minutes),
        status=status,
        fee=50_000,
        platform_fee=2_500,
        gst=450,
        total=52_950,
        paid_amount=52_950 if status == "CONFIRMED" else 0,
        gateway_paid=52_950 if status == "CONFIRMED" else 0,
    )
    from portal.catalog.models import Provider as P

    item.providers = [db.session.get(P, pid) for pid in (providers or world.doctors[:1])]
    db.session.add(item)
    db.session.commit()
    return item.id
