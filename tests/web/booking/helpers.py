"""Helpers of the booking page tests: the catalog, slots, holds, htmx headers, wallet."""

from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from portal.catalog.models import (
    Availability,
    Clinic,
    ClinicHours,
    Provider,
    Service,
    Specialization,
)
from portal.db import utcnow
from portal.extensions import db

IST = ZoneInfo("Asia/Kolkata")
GSTIN = "29ABCDE1234F1Z5"
HX = {"HX-Request": "true"}


def weekday_ahead(min_days=2):
    """A Monday–Friday at least ``min_days`` ahead (India date)."""
    day = utcnow().astimezone(IST).date() + timedelta(days=min_days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def slot(day, hh, mm=0):
    """Aware UTC for ``day`` at hh:mm IST."""
    return datetime.combine(day, time(hh, mm), tzinfo=IST).astimezone(UTC)


def hx(target=None, boosted=False):
    headers = dict(HX)
    if target:
        headers["HX-Target"] = target
    if boosted:
        headers["HX-Boosted"] = "true"
    return headers


def build_catalog(make_user):
    """The catalog and its provider logins; returns ids."""
    users = {
        key: make_user("provider", name=name)
        for key, name in (("doc1", "Dr Asha Rao"), ("doc2", "Dr Vikram Shah"), ("lab", "City Lab"))
    }
    clinic = Clinic(name="Indiranagar Clinic", city="Bengaluru", address="100 Ft Road", gstin=GSTIN)
    clinic.hours = [ClinicHours(weekday=d, opens=time(9), closes=time(18)) for d in range(5)]
    gp, path = Specialization(name="General Medicine"), Specialization(name="Pathology")
    consult = Service(
        name="Consultation",
        kind="CONSULTATION",
        duration_minutes=30,
        fee_paise=50_000,
        mode="IN_PERSON",
        specialization=gp,
    )
    follow = Service(
        name="Follow-up",
        kind="FOLLOW_UP",
        duration_minutes=15,
        fee_paise=25_050,
        mode="IN_PERSON",
        specialization=gp,
    )
    lab = Service(
        name="Blood test",
        kind="LAB_TEST",
        duration_minutes=15,
        fee_paise=33_333,
        mode="IN_PERSON",
        specialization=path,
    )
    db.session.add_all([clinic, gp, path, consult, follow, lab])

    def provider(user, name, kind, spec, services):
        p = Provider(user_id=user.id, kind=kind, display_name=name, registration_no="KMC-1")
        p.clinics, p.specializations, p.services = [clinic], [spec], services
        p.availability = [
            Availability(clinic=clinic, weekday=d, start_time=time(9), end_time=time(18))
            for d in range(5)
        ]
        db.session.add(p)
        return p

    doc1 = provider(users["doc1"], "Dr Asha Rao", "DOCTOR", gp, [consult, follow])
    doc2 = provider(users["doc2"], "Dr Vikram Shah", "DOCTOR", gp, [consult, follow])
    lab_p = provider(users["lab"], "City Lab", "LAB", path, [lab])
    db.session.commit()
    return SimpleNamespace(
        clinic=clinic.id,
        consult=consult.id,
        follow=follow.id,
        lab=lab.id,
        doc1=doc1.id,
        doc2=doc2.id,
        lab_provider=lab_p.id,
        provider_user=users["doc1"],
    )


def book_url(w, provider=None, service=None, start=None):
    from urllib.parse import urlencode

    return "/me/book?" + urlencode(
        {
            "provider": provider or w.doc1,
            "service": service or w.consult,
            "clinic": w.clinic,
            "start": (start or slot(w.day, 10)).isoformat(),
        }
    )


def hold(
    app,
    w,
    *,
    patient=None,
    provider=None,
    service=None,
    start=None,
    dependent=None,
    visit_id=None,
    providers=None,
):
    """Hold a slot through the service (test set-up); returns (visit id, item id)."""
    from portal.booking import visits as booking_visits

    patient = patient or w.patient
    with app.app_context():
        item = booking_visits.add_item(
            patient,
            patient_id=patient.id,
            service_id=service or w.consult,
            provider_ids=providers or [provider or w.doc1],
            clinic_id=w.clinic,
            start_at=start or slot(w.day, 10),
            dependent_id=dependent,
            visit_id=visit_id,
        )
        return item.master_id, item.id


def pay_on_sandbox(client, checkout_url, outcome="success"):
    """Do what the patient does on the sandbox's checkout page (served by the app at
    /sandbox); returns the callback URL the gateway sends the browser back to."""
    import re
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(checkout_url)
    page = client.get(parts.path, query_string=parts.query)
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    action = re.search(r'<form method="post" action="([^"]+)"', page.get_data(as_text=True))
    callback = dict(parse_qsl(parts.query))["callback_url"]
    answer = client.post(
        action.group(1), data={"callback_url": callback, "method": "upi", "outcome": outcome}
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)[:500]
    return answer.location


def returned_from_sandbox(client, visit_id, outcome="success"):
    """Press Pay on the visit's page, then succeed or fail on the sandbox's checkout: the
    address (``urlsplit``) the gateway sends the browser back to, not yet followed."""
    from urllib.parse import urlsplit

    paying = client.post(f"/me/visits/{visit_id}/pay", data=pay_fields(client, visit_id))
    assert paying.status_code == 303 and "/sandbox/checkout/" in paying.location
    return urlsplit(pay_on_sandbox(client, paying.location, outcome=outcome))


def held_until(app, visit_id):
    """When the visit's hold ends (``hold_expires_at``), read in an app context of its own."""
    from portal.booking.models import MasterBooking

    with app.app_context():
        until = db.session.get(MasterBooking, visit_id).hold_expires_at
        db.session.remove()
    return until


def credit_wallet(app, user_id, paise):
    from tests.booking.factories import credit_wallet as credit

    with app.app_context():
        credit(user_id, paise)


def online_service(app, world):
    """A video consultation (ONLINE) the first doctor gives: a meeting link is asked of it."""
    with app.app_context():
        service = Service(
            name="Video consultation",
            kind="CONSULTATION",
            duration_minutes=30,
            fee_paise=40_000,
            mode="ONLINE",
            specialization_id=db.session.get(Service, world.consult).specialization_id,
        )
        db.session.add(service)
        provider = db.session.get(Provider, world.doc1)
        provider.services = [*provider.services, service]
        db.session.commit()
        return service.id


def pay_fields(client, visit, wallet="", **kwargs):
    """The pay form's fields as the visit's page fills them for this wallet amount (the
    amounts its button states, ``shown_wallet``/``shown_online``, which the checkout
    requires), with ``wallet`` as typed. ``visit``: its id or its page's path."""
    import re

    path = visit if isinstance(visit, str) else f"/me/visits/{visit}"
    page = client.get(path, query_string={"wallet": wallet} if wallet else None, **kwargs)
    form = re.search(
        r'<form method="post" action="[^"]*/pay".*?</form>', page.get_data(as_text=True), re.S
    )
    assert form, (page.status_code, "no pay form")
    fields = dict(re.findall(r'<input[^>]*type="hidden" name="([^"]+)" value="([^"]*)"', form[0]))
    return {**fields, "wallet": wallet}
