"""Demo data for the embedded mode (``flask demo load``): three clinics in two cities, ten
specializations, twenty providers (two of them labs) with services, weekly hours and a few
leaves, and the demo logins (one per role, a lab and a doctor whose payouts carry TDS).

Idempotent: every row is found by its natural key (email, clinic name and city, service
name …) and created only when missing, so a second run changes nothing. Rows are inserted
directly rather than through the catalog services: no invitation mails go out for people
who do not exist, and loading stays quick.

Over 400 lines: mostly the demo data itself."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from portal.accounts.models import ADMIN, PATIENT, PROVIDER, Dependent, User
from portal.accounts.passwords import hash_password
from portal.catalog.models import (
    CONSULTATION,
    DEFAULT_TIMEZONE,
    DOCTOR,
    FOLLOW_UP,
    IN_PERSON,
    INSTANT,
    LAB,
    LAB_TEST,
    MONTHLY,
    ONLINE,
    WEEKLY,
    Availability,
    Clinic,
    ClinicHours,
    Leave,
    Provider,
    Service,
    Specialization,
    gstin_checksum,
)
from portal.catalog.pan import wait_for_payouts
from portal.db import unit_of_work, utcnow
from portal.extensions import db
from portal.policies import service as policy_service

LOGINS = (  # email, password, name, role
    ("patient@demo.clinic", "demo-patient-1", "Priya Sharma", PATIENT),
    ("doctor@demo.clinic", "demo-doctor-1", "Dr. Asha Rao", PROVIDER),
    ("admin@demo.clinic", "demo-admin-1", "Ravi Menon", ADMIN),
    ("admin2@demo.clinic", "demo-admin-2", "Meera Iyer", ADMIN),
    # A lab's week, and a doctor's payouts with TDS (her year passes the threshold in the
    # history, docs/demo.md). Last: the first three are one login per role.
    ("labs.bengaluru@demo.clinic", "demo-lab-1", "Bengaluru Diagnostics", PROVIDER),
    ("kavya.hegde@demo.clinic", "demo-doctor-2", "Dr. Kavya Hegde", PROVIDER),
)


def _gstin(state, pan):
    first14 = f"{state}{pan}1Z"
    return first14 + gstin_checksum(first14)


WEEKDAYS_9_18 = {d: (time(9), time(18)) for d in range(5)}
CLINICS = (  # key, name, city, address, gstin, hours
    (
        "indiranagar",
        "Indiranagar Family Clinic",
        "Bengaluru",
        "12, 100 Feet Road, HAL 2nd Stage, Indiranagar, Bengaluru 560038",
        _gstin("29", "AADCI4821K"),
        WEEKDAYS_9_18,
    ),
    (
        "jayanagar",
        "Jayanagar Health Centre",
        "Bengaluru",
        "45, 11th Main, 4th Block, Jayanagar, Bengaluru 560011",
        _gstin("29", "AADCJ7310M"),
        WEEKDAYS_9_18,
    ),
    (
        "kothrud",
        "Kothrud Care Clinic",
        "Pune",
        "8, Karve Road, Kothrud, Pune 411038",
        _gstin("27", "AADCK5527P"),
        {**WEEKDAYS_9_18, 5: (time(9), time(13))},
    ),
)

SPECIALIZATIONS = (
    "General Medicine",
    "Paediatrics",
    "Dermatology",
    "Cardiology",
    "Orthopaedics",
    "Gynaecology",
    "ENT",
    "Psychiatry",
    "Endocrinology",
    "Pathology",
)

SERVICES = (  # name, kind, specialization, minutes, fee (₹), mode, taxable
    ("General consultation", CONSULTATION, "General Medicine", 20, 500, IN_PERSON, False),
    ("General follow-up", FOLLOW_UP, "General Medicine", 15, 300, IN_PERSON, False),
    ("Teleconsultation (general)", CONSULTATION, "General Medicine", 15, 400, ONLINE, False),
    ("Child consultation", CONSULTATION, "Paediatrics", 20, 600, IN_PERSON, False),
    ("Child follow-up", FOLLOW_UP, "Paediatrics", 15, 350, IN_PERSON, False),
    ("Skin consultation", CONSULTATION, "Dermatology", 20, 800, IN_PERSON, False),
    ("Chemical peel (cosmetic)", CONSULTATION, "Dermatology", 45, 3500, IN_PERSON, True),
    ("Heart consultation", CONSULTATION, "Cardiology", 30, 1200, IN_PERSON, False),
    ("Cardiology follow-up", FOLLOW_UP, "Cardiology", 20, 700, IN_PERSON, False),
    ("Bone and joint consultation", CONSULTATION, "Orthopaedics", 30, 900, IN_PERSON, False),
    ("Women's health consultation", CONSULTATION, "Gynaecology", 30, 900, IN_PERSON, False),
    ("ENT consultation", CONSULTATION, "ENT", 20, 700, IN_PERSON, False),
    ("Counselling session (online)", CONSULTATION, "Psychiatry", 50, 1500, ONLINE, False),
    ("Psychiatry follow-up (online)", FOLLOW_UP, "Psychiatry", 30, 900, ONLINE, False),
    (
        "Diabetes and thyroid consultation",
        CONSULTATION,
        "Endocrinology",
        30,
        1000,
        IN_PERSON,
        False,
    ),
    ("Complete blood count", LAB_TEST, "Pathology", 10, 350, IN_PERSON, False),
    ("Thyroid profile (T3, T4, TSH)", LAB_TEST, "Pathology", 10, 600, IN_PERSON, False),
    ("Lipid profile", LAB_TEST, "Pathology", 10, 550, IN_PERSON, False),
    ("HbA1c", LAB_TEST, "Pathology", 10, 450, IN_PERSON, False),
)

# email local part, display name, kind, specializations, clinics, registration, schedule
# key (see _SCHEDULES), payout schedule
PROVIDERS = (
    (
        "doctor",
        "Dr. Asha Rao",
        DOCTOR,
        ("General Medicine",),
        ("indiranagar", "jayanagar"),
        "KMC-48213",
        "split",
        WEEKLY,
    ),
    (
        "vikram.nair",
        "Dr. Vikram Nair",
        DOCTOR,
        ("General Medicine",),
        ("kothrud",),
        "MMC-2011-5521",
        "full",
        WEEKLY,
    ),
    (
        "sunita.kulkarni",
        "Dr. Sunita Kulkarni",
        DOCTOR,
        ("Paediatrics",),
        ("kothrud",),
        "MMC-2008-1187",
        "mwf",
        MONTHLY,
    ),
    (
        "arjun.reddy",
        "Dr. Arjun Reddy",
        DOCTOR,
        ("Paediatrics",),
        ("indiranagar",),
        "KMC-51902",
        "full",
        WEEKLY,
    ),
    (
        "kavya.hegde",
        "Dr. Kavya Hegde",
        DOCTOR,
        ("Dermatology",),
        ("indiranagar", "jayanagar"),
        "KMC-60318",
        "split",
        INSTANT,
    ),
    (
        "rohan.deshpande",
        "Dr. Rohan Deshpande",
        DOCTOR,
        ("Dermatology",),
        ("kothrud",),
        "MMC-2015-7740",
        "tth",
        WEEKLY,
    ),
    (
        "anil.kumar",
        "Dr. Anil Kumar",
        DOCTOR,
        ("Cardiology",),
        ("jayanagar",),
        "KMC-33107",
        "mornings",
        MONTHLY,
    ),
    (
        "neha.joshi",
        "Dr. Neha Joshi",
        DOCTOR,
        ("Cardiology", "General Medicine"),
        ("kothrud",),
        "MMC-2012-3098",
        "afternoons",
        WEEKLY,
    ),
    (
        "suresh.babu",
        "Dr. Suresh Babu",
        DOCTOR,
        ("Orthopaedics",),
        ("indiranagar",),
        "KMC-29874",
        "mwf",
        WEEKLY,
    ),
    (
        "pooja.patil",
        "Dr. Pooja Patil",
        DOCTOR,
        ("Orthopaedics",),
        ("kothrud",),
        "MMC-2016-4412",
        "full",
        WEEKLY,
    ),
    (
        "lakshmi.srinivasan",
        "Dr. Lakshmi Srinivasan",
        DOCTOR,
        ("Gynaecology",),
        ("jayanagar",),
        "KMC-41766",
        "full",
        MONTHLY,
    ),
    (
        "farah.khan",
        "Dr. Farah Khan",
        DOCTOR,
        ("Gynaecology",),
        ("indiranagar",),
        "KMC-57120",
        "tth",
        WEEKLY,
    ),
    (
        "manoj.shetty",
        "Dr. Manoj Shetty",
        DOCTOR,
        ("ENT",),
        ("jayanagar",),
        "KMC-38850",
        "afternoons",
        WEEKLY,
    ),
    (
        "deepa.gokhale",
        "Dr. Deepa Gokhale",
        DOCTOR,
        ("ENT",),
        ("kothrud",),
        "MMC-2010-6634",
        "mornings",
        WEEKLY,
    ),
    (
        "sameer.bhat",
        "Dr. Sameer Bhat",
        DOCTOR,
        ("Psychiatry",),
        ("indiranagar",),
        "KMC-62045",
        "afternoons",
        INSTANT,
    ),
    (
        "ishita.sen",
        "Dr. Ishita Sen",
        DOCTOR,
        ("Psychiatry",),
        ("kothrud",),
        "MMC-2018-2093",
        "mwf",
        WEEKLY,
    ),
    (
        "gopal.krishnan",
        "Dr. Gopal Krishnan",
        DOCTOR,
        ("Endocrinology", "General Medicine"),
        ("jayanagar",),
        "KMC-27519",
        "full",
        WEEKLY,
    ),
    (
        "ananya.das",
        "Dr. Ananya Das",
        DOCTOR,
        ("Endocrinology",),
        ("indiranagar", "kothrud"),
        "KMC-66381",
        "split",
        WEEKLY,
    ),
    (
        "labs.bengaluru",
        "Bengaluru Diagnostics",
        LAB,
        ("Pathology",),
        ("indiranagar", "jayanagar"),
        "NABL-MC-2741",
        "split",
        WEEKLY,
    ),
    (
        "labs.pune",
        "Pune Path Labs",
        LAB,
        ("Pathology",),
        ("kothrud",),
        "NABL-MC-3318",
        "lab",
        MONTHLY,
    ),
)

# PANs on file (docs/demo.md): the TDS doctor's (a person's: P) and the demo lab's (a
# company's: C), so their TDS pages and the admin's TDS report show one. Dr. Asha Rao has
# none: her bank page offers to enter it (docs/payouts.md, "PAN").
PANS = {"kavya.hegde": "AKMPH6214R", "labs.bengaluru": "AADCB7319L"}

_SCHEDULES = {
    # key: [(clinic index in the provider's clinics, weekdays, start, end)]
    "full": [(0, range(5), time(9), time(18))],
    "mornings": [(0, range(5), time(9), time(13))],
    "afternoons": [(0, range(5), time(14), time(18))],
    "mwf": [(0, (0, 2, 4), time(10), time(17))],
    "tth": [(0, (1, 3), time(9), time(17))],
    # Two clinics: mornings at the first, afternoons at the second.
    "split": [(0, range(5), time(9), time(13)), (-1, range(5), time(14), time(18))],
    "lab": [(0, range(6), time(9), time(18))],  # clipped to each clinic's hours
}

LEAVES = (  # provider email local part, days from today, length in days, reason
    ("doctor", 9, 2, "Medical conference"),
    ("kavya.hegde", 3, 1, "Personal leave"),
    ("anil.kumar", 15, 5, "Annual leave"),
    ("pooja.patil", 1, 1, "Training"),
)
DEMO_LEAVE_PREFIX = "Demo: "


def _email(local):
    return f"{local}@demo.clinic"


class _Loader:
    def __init__(self):
        self.created = {}

    def count(self, what):
        self.created[what] = self.created.get(what, 0) + 1

    def one(self, query):
        return db.session.scalar(query)

    def user(self, email, name, role, password=None, phone=None):
        user = self.one(sa.select(User).where(User.email == email))
        if user is None:
            user = User(
                email=email,
                name=name,
                role=role,
                phone=phone,
                password_hash=hash_password(password) if password else None,
            )
            db.session.add(user)
            self.count("users")
        elif password and user.password_hash is None:
            # Loaded before this login had a password (the lab's and the TDS doctor's).
            user.password_hash = hash_password(password)
            self.count("passwords")
        return user

    def clinic(self, name, city, address, gstin, hours):
        clinic = self.one(sa.select(Clinic).where(Clinic.name == name, Clinic.city == city))
        if clinic is None:
            clinic = Clinic(name=name, city=city, address=address, gstin=gstin)
            clinic.hours = [
                ClinicHours(weekday=d, opens=o, closes=c) for d, (o, c) in sorted(hours.items())
            ]
            db.session.add(clinic)
            self.count("clinics")
        return clinic

    def specialization(self, name):
        spec = self.one(sa.select(Specialization).where(Specialization.name == name))
        if spec is None:
            spec = Specialization(name=name)
            db.session.add(spec)
            self.count("specializations")
        return spec

    def service(self, name, kind, spec, minutes, rupees, mode, taxable):
        row = self.one(sa.select(Service).where(Service.name == name))
        if row is None:
            row = Service(
                name=name,
                kind=kind,
                specialization=spec,
                duration_minutes=minutes,
                fee_paise=rupees * 100,
                mode=mode,
                taxable=taxable,
            )
            db.session.add(row)
            self.count("services")
        return row


def load_demo(echo=print):
    """Create whatever demo data is missing (one unit of work) and print the demo logins."""
    load = _Loader()
    with unit_of_work():
        _load(load)
    policy_service.ensure_first_version()  # policy version 1 = POLICY.md's defaults
    made = ", ".join(f"{n} {what}" for what, n in load.created.items()) or "nothing new"
    echo(f"Demo data loaded ({made}).")
    echo("Demo logins:")
    for email, password, name, role in LOGINS:
        echo(f"  {role:<8} {email:<26} {password}   ({name})")


def _load(load):
    passwords = {email: (password, name, role) for email, password, name, role in LOGINS}
    for email, (password, name, role) in passwords.items():
        if role != PROVIDER:
            load.user(email, name, role, password, phone="+919812345678")

    clinics = {
        key: load.clinic(name, city, address, gstin, hours)
        for key, name, city, address, gstin, hours in CLINICS
    }
    specs = {name: load.specialization(name) for name in SPECIALIZATIONS}
    services = [
        load.service(name, kind, specs[spec], minutes, fee, mode, taxable)
        for name, kind, spec, minutes, fee, mode, taxable in SERVICES
    ]
    db.session.flush()

    providers = {}
    for local, display, kind, spec_names, clinic_keys, reg, schedule, payouts in PROVIDERS:
        email = _email(local)
        password = passwords.get(email, (None,))[0]
        user = load.user(email, display, PROVIDER, password)
        db.session.flush()
        provider = load.one(sa.select(Provider).where(Provider.user_id == user.id))
        if provider is None:
            provider_specs = [specs[s] for s in spec_names]
            provider_clinics = [clinics[k] for k in clinic_keys]
            provider = Provider(
                user=user,
                kind=kind,
                display_name=display,
                registration_no=reg,
                pan=PANS.get(local),
                payout_schedule=payouts,
                bio=(
                    "NABL-accredited sample collection and reports."
                    if kind == LAB
                    else f"{', '.join(spec_names)} · consults in English, Hindi and Kannada."
                ),
            )
            provider.specializations = provider_specs
            provider.clinics = provider_clinics
            provider.services = [s for s in services if s.specialization in provider_specs]
            provider.availability = _availability(provider_clinics, clinic_keys, schedule)
            db.session.add(provider)
            load.count("providers")
        elif provider.pan is None and local in PANS:
            wait_for_payouts(provider.id, PANS[local])  # as every PAN write
            provider.pan = PANS[local]  # loaded before the demo had PANs
            load.count("PANs")
        providers[local] = provider
    db.session.flush()

    today = utcnow().astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date()
    for local, offset, length, reason in LEAVES:
        provider = providers[local]
        reason = DEMO_LEAVE_PREFIX + reason
        if not any(leave.reason == reason for leave in provider.leaves):
            start = _local_midnight(today + timedelta(days=offset))
            provider.leaves.append(
                Leave(starts_at=start, ends_at=start + timedelta(days=length), reason=reason)
            )
            load.count("leaves")

    patient = load.one(sa.select(User).where(User.email == LOGINS[0][0]))
    if not patient.dependents:
        patient.dependents.append(
            Dependent(name="Aarav Sharma", relationship_="child", date_of_birth=date(2017, 6, 14))
        )
        load.count("dependents")


def _availability(provider_clinics, clinic_keys, schedule):
    """The schedule's weekly windows, clipped to each clinic's opening hours."""
    hours = {key: h for key, _n, _c, _a, _g, h in CLINICS}
    rows = []
    for index, days, start, end in _SCHEDULES[schedule]:
        key = clinic_keys[index]
        for day in days:
            if day not in hours[key]:
                continue
            opens, closes = hours[key][day]
            s, e = max(start, opens), min(end, closes)
            if s < e:
                rows.append(
                    Availability(
                        clinic=provider_clinics[index], weekday=day, start_time=s, end_time=e
                    )
                )
    return rows


def _local_midnight(day):
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(DEFAULT_TIMEZONE))
