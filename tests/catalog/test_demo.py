"""The demo data: complete, quick, and idempotent."""

import time

import sqlalchemy as sa

from portal.accounts.models import Dependent, User
from portal.accounts.passwords import verify_password
from portal.catalog.demo import LOGINS, load_demo
from portal.catalog.models import (
    Availability,
    Clinic,
    Leave,
    Provider,
    Service,
    Specialization,
    provider_services,
)
from portal.db import utcnow
from portal.extensions import db

MODELS = (User, Dependent, Clinic, Specialization, Provider, Service, Availability, Leave)


def counts():
    out = {m.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(m)) for m in MODELS}
    out["provider_services"] = db.session.scalar(
        sa.select(sa.func.count()).select_from(provider_services)
    )
    return out


def test_demo_load_is_complete_quick_and_idempotent(ctx):
    lines = []
    started = time.perf_counter()
    load_demo(echo=lines.append)
    assert time.perf_counter() - started < 10
    first = counts()
    assert first["Clinic"] == 3 and first["Specialization"] == 10
    assert first["Provider"] == 20 and first["Dependent"] == 1 and first["Leave"] >= 3
    cities = db.session.scalars(sa.select(Clinic.city)).all()
    assert sorted(set(cities)) == ["Bengaluru", "Pune"]
    kinds = db.session.scalars(sa.select(Provider.kind)).all()
    assert kinds.count("LAB") == 2
    modes = set(db.session.scalars(sa.select(Service.mode)))
    assert modes == {"IN_PERSON", "ONLINE"}
    for email, password, _name, role in LOGINS:
        user = db.session.scalar(sa.select(User).where(User.email == email))
        assert user.role == role and verify_password(user.password_hash, password)
    assert any("doctor@demo.clinic" in line and "demo-doctor-1" in line for line in lines)

    audit_before = db.session.execute(sa.text("SELECT count(*) FROM audit_log")).scalar()
    load_demo(echo=lines.append)
    assert counts() == first
    assert db.session.execute(sa.text("SELECT count(*) FROM audit_log")).scalar() == audit_before
    assert "nothing new" in lines[-len(LOGINS) - 2]


def test_demo_providers_have_bookable_slots(ctx):
    from portal.catalog.slots import find_offers, search_providers

    load_demo(echo=lambda *_: None)
    providers = search_providers()
    today = utcnow().date()
    offers = find_offers(providers, from_date=today, days=14, limit=1)
    without = [p.display_name for p in providers if not any(o.slots for o in offers[p.id])]
    assert not without, without
