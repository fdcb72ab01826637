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


def test_a_lab_and_the_tds_doctor_have_printed_logins(ctx):
    """Review: README and `demo load` named only one provider login (the doctor); the demo
    lab and Dr. Kavya Hegde (whose payouts carry TDS) could not be signed in as."""
    lines = []
    load_demo(echo=lines.append)
    for email, kind, name in [
        ("labs.bengaluru@demo.clinic", "LAB", "Bengaluru Diagnostics"),
        ("kavya.hegde@demo.clinic", "DOCTOR", "Dr. Kavya Hegde"),
    ]:
        printed = [line.split() for line in lines if email in line]
        assert len(printed) == 1, (email, lines)
        password = printed[0][printed[0].index(email) + 1]
        user = db.session.scalar(sa.select(User).where(User.email == email))
        assert user.password_hash and verify_password(user.password_hash, password)
        provider = db.session.scalar(sa.select(Provider).where(Provider.user_id == user.id))
        assert (provider.kind, provider.display_name) == (kind, name)


def test_a_demo_login_loaded_before_it_had_a_password_gets_it(ctx):
    """A demo database loaded before these logins had passwords: loading again sets them
    (nothing else of the row changes)."""
    load_demo(echo=lambda *_: None)
    user = db.session.scalar(sa.select(User).where(User.email == "kavya.hegde@demo.clinic"))
    user.password_hash = None
    db.session.commit()
    lines = []
    load_demo(echo=lines.append)
    db.session.refresh(user)
    password = dict((e, p) for e, p, _n, _r in LOGINS)["kavya.hegde@demo.clinic"]
    assert user.password_hash and verify_password(user.password_hash, password)
    assert "1 passwords" in lines[0]


def test_the_tds_doctor_and_the_lab_have_a_pan_and_an_older_demo_gets_them(ctx):
    """docs/demo.md: Dr. Kavya Hegde (a person's PAN: P) and Bengaluru Diagnostics (a
    company's: C) have a PAN on file, valid by the rule the forms apply; no other demo
    provider has one (Dr. Asha Rao's bank page offers to enter it). A demo database loaded
    before they had one gets them on the next load, and nothing else changes."""
    from portal.domain.tax_ids import clean_pan

    load_demo(echo=lambda *_: None)

    def pans():
        return dict(
            db.session.execute(
                sa.select(User.email, Provider.pan).join(Provider, Provider.user_id == User.id)
            ).all()
        )

    on_file = {email: pan for email, pan in pans().items() if pan}
    assert on_file == {
        "kavya.hegde@demo.clinic": "AKMPH6214R",
        "labs.bengaluru@demo.clinic": "AADCB7319L",
    }
    assert all(clean_pan(pan) == pan for pan in on_file.values())
    assert on_file["kavya.hegde@demo.clinic"][3] == "P"
    assert on_file["labs.bengaluru@demo.clinic"][3] == "C"
    for provider in db.session.scalars(sa.select(Provider).where(Provider.pan.is_not(None))):
        provider.pan = None  # as loaded before the demo had PANs
    db.session.commit()
    lines = []
    load_demo(echo=lines.append)
    assert {email: pan for email, pan in pans().items() if pan} == on_file
    assert "2 PANs" in lines[0]
