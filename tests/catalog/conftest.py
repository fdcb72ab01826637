"""A small catalog for the catalog tests: one admin, two Bengaluru clinics and one in Pune,
two specializations, a doctor who can sign in, another provider, and their services."""

from datetime import time

import pytest

from portal.catalog.clinics import create_clinic, create_specialization
from portal.catalog.models import Availability, Provider
from portal.catalog.services import create_service
from portal.extensions import db


@pytest.fixture
def admin(make_user):
    return make_user("admin")


@pytest.fixture
def catalog(app, admin, make_user):
    """Ids of a small catalog. ``doctor_user`` / ``other_user`` are provider logins."""
    doctor_user = make_user("provider", name="Dr. Asha Rao")
    other_user = make_user("provider", name="Dr. Vikram Nair")
    with app.app_context():
        a = db.session.merge(admin)
        indira = create_clinic(
            a,
            name="Indiranagar Clinic",
            city="Bengaluru",
            address="100 Feet Road",
            gstin="29AAGCB7383J1Z4",
        )
        jaya = create_clinic(a, name="Jayanagar Clinic", city="Bengaluru")
        pune = create_clinic(
            a, name="Kothrud Clinic", city="Pune", hours={d: (time(9), time(18)) for d in range(6)}
        )
        gm = create_specialization(a, "General Medicine")
        derm = create_specialization(a, "Dermatology")
        consult = create_service(
            a,
            name="General consultation",
            kind="CONSULTATION",
            duration_minutes=30,
            fee_paise=50_000,
            mode="IN_PERSON",
            specialization_id=gm.id,
        )
        skin = create_service(
            a,
            name="Skin consultation",
            kind="CONSULTATION",
            duration_minutes=20,
            fee_paise=80_000,
            mode="IN_PERSON",
            specialization_id=derm.id,
        )
        doctor = Provider(
            user_id=doctor_user.id,
            kind="DOCTOR",
            display_name="Dr. Asha Rao",
            registration_no="KMC-1",
        )
        doctor.clinics = [indira, jaya]
        doctor.specializations = [gm]
        doctor.services = [consult]
        doctor.availability = [
            Availability(clinic=indira, weekday=d, start_time=time(9), end_time=time(13))
            for d in range(5)
        ]
        other = Provider(
            user_id=other_user.id,
            kind="DOCTOR",
            display_name="Dr. Vikram Nair",
            registration_no="MMC-2",
        )
        other.clinics = [pune]
        other.specializations = [derm]
        other.services = [skin]
        other.availability = [
            Availability(clinic=pune, weekday=d, start_time=time(9), end_time=time(18))
            for d in range(6)
        ]
        db.session.add_all([doctor, other])
        db.session.commit()
        ids = dict(
            indira=indira.id,
            jaya=jaya.id,
            pune=pune.id,
            gm=gm.id,
            derm=derm.id,
            consult=consult.id,
            skin=skin.id,
            doctor=doctor.id,
            other=other.id,
        )
    ids.update(doctor_user=doctor_user, other_user=other_user, admin=admin)
    return ids
