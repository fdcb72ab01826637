"""Data for ``tests.load.bench_http``, written before anything is timed.

Runs in the benchmark's own process through the portal's services and models, on the same
PostgreSQL as the served portal but without Redis: follow-up work of the set-up runs inline
here, so the timed run starts with an empty outbox. The clinic is open every day
06:00–22:00 IST (32 half-hour slots a day per provider)."""

import logging
import os
import re
import time as clock
from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import httpx

from tests.booking.factories import quoted_checkout
from tests.load.http_stack import CONTROL_AUTH

IST = ZoneInfo("Asia/Kolkata")
PASSWORD = "bench-patient-password-1"
OPENS, CLOSES, SLOT_MINUTES = time(6), time(22), 30
SLOTS_PER_DAY = (CLOSES.hour - OPENS.hour) * 60 // SLOT_MINUTES
CONSULT_FEE = 50_000  # paise: the one service's fee (the minimal flow states its price)


def first_day():
    """Tomorrow in India: every slot from here on is past the booking lead time."""
    return datetime.now(IST).date() + timedelta(days=1)


def slot_start(day, index):
    """The ``index``-th slot from ``day`` on (aware UTC), running over into later days."""
    day = day + timedelta(days=index // SLOTS_PER_DAY)
    local = datetime.combine(day, OPENS, tzinfo=IST) + timedelta(
        minutes=SLOT_MINUTES * (index % SLOTS_PER_DAY)
    )
    return local.astimezone(UTC)


def build_app(environment):
    """The portal app on the benchmark's database, jobs inline (no REDIS_URL). Its request
    and job log lines and console mail are not the benchmark's output: they are dropped."""
    for name in ("portal", "portal.events"):
        logging.getLogger(name).addHandler(logging.NullHandler())
    logging.getLogger("portal").propagate = False
    os.environ.update(environment)
    os.environ.pop("REDIS_URL", None)
    from portal import create_app

    return create_app()


def seed(app, *, flow_providers, patients):
    """Catalog, providers and patients; returns their ids (and names for searching)."""
    from portal.accounts.models import User
    from portal.accounts.passwords import hash_password
    from portal.catalog.models import (
        Availability,
        Clinic,
        ClinicHours,
        Provider,
        Service,
        Specialization,
    )
    from portal.extensions import db

    with app.app_context():
        clinic = Clinic(
            name="Bench Clinic", city="Benchpur", address="1 Loopback Road", gstin="29ABCDE1234F1Z5"
        )
        clinic.hours = [ClinicHours(weekday=d, opens=OPENS, closes=CLOSES) for d in range(7)]
        gp = Specialization(name="General Medicine")
        consult = Service(
            name="Consultation",
            kind="CONSULTATION",
            duration_minutes=SLOT_MINUTES,
            fee_paise=CONSULT_FEE,
            mode="IN_PERSON",
            specialization=gp,
        )
        db.session.add_all([clinic, gp, consult])

        def provider(name):
            user = User(
                email=f"{name.lower().replace(' ', '.')}@bench.example",
                name=name,
                role="provider",
                phone="+919800000000",
            )
            p = Provider(user=user, kind="DOCTOR", display_name=name, registration_no="KMC-1")
            p.clinics, p.specializations, p.services = [clinic], [gp], [consult]
            p.availability = [
                Availability(clinic=clinic, weekday=d, start_time=OPENS, end_time=CLOSES)
                for d in range(7)
            ]
            db.session.add(p)
            return p

        flows = [provider(f"Dr Flow {i:03d}") for i in range(flow_providers)]
        empty, busy, race = (provider(f"Dr Bench {n}") for n in ("Empty", "Busy", "Race"))
        # One hash for all: argon2 at the production cost, paid once here, and per sign-in.
        digest = hash_password(PASSWORD)
        people = [
            User(
                email=f"patient{i:04d}@bench.example",
                name=f"Patient {i:04d}",
                role="patient",
                phone="+919811111111",
                password_hash=digest,
            )
            for i in range(patients + 1)
        ]
        db.session.add_all(people)
        db.session.commit()
        world = SimpleNamespace(
            clinic=clinic.id,
            service=consult.id,
            flows=[(p.id, p.display_name) for p in flows],
            empty=(empty.id, empty.display_name),
            busy=(busy.id, busy.display_name),
            race=(race.id, race.display_name),
            patients=[u.email for u in people[:patients]],
            busy_patient=people[-1].id,
        )
        db.session.remove()
    return world


def busy_calendar(app, world, bookings, sandbox_url, portal_url):
    """``bookings`` confirmed consultations of Dr Bench Busy from tomorrow on, slot after
    slot (one paid visit per day), through the booking services and the sandbox."""
    from portal.accounts.models import User
    from portal.booking import checkout, visits
    from portal.extensions import db

    day, done = first_day(), 0
    with app.app_context(), httpx.Client(base_url=sandbox_url, timeout=30) as browser:
        patient = db.session.get(User, world.busy_patient)
        while done < bookings:
            visit_id = None
            for index in range(min(SLOTS_PER_DAY, bookings - done)):
                item = visits.add_item(
                    patient,
                    patient_id=patient.id,
                    service_id=world.service,
                    provider_ids=[world.busy[0]],
                    clinic_id=world.clinic,
                    start_at=slot_start(day, done + index),
                    visit_id=visit_id,
                )
                visit_id = item.master_id
            done += index + 1
            callback = f"{portal_url}/me/visits/{visit_id}/paid"
            result = quoted_checkout(patient, visit_id, 0, callback_url=callback)
            checkout.complete_checkout_callback(pay(browser, result.redirect_url))
            db.session.remove()
            patient = db.session.get(User, world.busy_patient)
    return first_day()


def pay(browser, checkout_url):
    """The patient on the sandbox's checkout page: the callback's parameters."""
    parts = urlsplit(checkout_url)
    page = browser.get(parts.path, params=dict(parse_qsl(parts.query)))
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    answer = browser.post(
        action,
        data={
            "callback_url": dict(parse_qsl(parts.query))["callback_url"],
            "method": "upi",
            "outcome": "success",
        },
    )
    return dict(parse_qsl(urlsplit(answer.headers["location"]).query))


def webhooks_delivered(sandbox_url, timeout=60):
    """Wait until the sandbox has no webhook left to send."""
    deadline = clock.monotonic() + timeout
    while clock.monotonic() < deadline:
        if (
            httpx.get(sandbox_url + "/_control/state", timeout=5, auth=CONTROL_AUTH).json()[
                "pending_webhooks"
            ]
            == 0
        ):
            return True
        clock.sleep(0.5)
    return False


def run_due_outbox(app):
    """Run the set-up's due follow-up work here (what the worker would do), so the timed
    part starts with nothing waiting. Returns how many items ran."""
    import sqlalchemy as sa

    from portal.db import utcnow
    from portal.extensions import db
    from portal.jobs import run_outbox_item
    from portal.outbox import OutboxItem

    ran = 0
    for _ in range(5):  # work done here may record more work
        with app.app_context():
            ids = db.session.scalars(
                sa.select(OutboxItem.id).where(
                    OutboxItem.done_at.is_(None), OutboxItem.run_after <= utcnow()
                )
            ).all()
            db.session.remove()
        if not ids:
            break
        for item_id in ids:
            with app.app_context():
                run_outbox_item(item_id, reraise=False)
        ran += len(ids)
    return ran
