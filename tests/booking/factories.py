"""Test data for booking: a clinic open Mon–Fri 09:00–18:00 IST, doctors and a lab with
weekly hours, services, patients, an admin; and a Razorpay sandbox served on loopback whose
webhooks are delivered into the portal app in-process. Used by tests and the benchmark."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import httpx

from portal.accounts.models import Dependent, User
from portal.catalog.models import (
    Availability,
    Clinic,
    ClinicHours,
    Provider,
    Service,
    Specialization,
)
from portal.extensions import db
from portal.gateway import tls
from portal.gateway.sandbox import create_sandbox_app
from portal.gateway.sandbox.delivery import wsgi_transport
from tests.threads import serve

IST = ZoneInfo("Asia/Kolkata")
# A Monday morning; tests travel here so weekdays and lead times are fixed.
NOW = datetime(2026, 6, 1, 8, 0, tzinfo=IST)
GSTIN = "29ABCDE1234F1Z5"


def at(day, hh, mm=0):
    """An aware UTC datetime for ``day`` (date, or days after NOW's date) at hh:mm IST."""
    if isinstance(day, int):
        day = NOW.date() + timedelta(days=day)
    return datetime.combine(day, time(hh, mm), tzinfo=IST).astimezone(UTC)


def _user(role, n, name=None):
    user = User(
        email=f"{role}{n}@example.com",
        name=name or f"{role.title()} {n}",
        role=role,
        phone="+919812345678",
        password_hash=None,
    )
    db.session.add(user)
    return user


def build_world(n_patients=3, n_doctors=2, tag="", registered=False):
    """Create the catalog and people (inside an app context); returns ids in a namespace.
    ``registered``: the doctors carry a council registration number (an admin's edit of a
    doctor's profile requires one)."""
    clinic = Clinic(
        name=f"Indiranagar Clinic{tag}", city="Bengaluru", address="100 Ft Rd", gstin=GSTIN
    )
    clinic.hours = [ClinicHours(weekday=d, opens=time(9), closes=time(18)) for d in range(5)]
    other = Clinic(name=f"Koramangala Clinic{tag}", city="Bengaluru", gstin=None)
    other.hours = [ClinicHours(weekday=d, opens=time(9), closes=time(18)) for d in range(5)]
    gp = Specialization(name=f"General Medicine{tag}")
    path = Specialization(name=f"Pathology{tag}")
    derm = Specialization(name=f"Dermatology{tag}")
    db.session.add_all([clinic, other, gp, path, derm])
    consult = Service(
        name="Consultation",
        kind="CONSULTATION",
        duration_minutes=30,
        fee_paise=50_000,
        mode="IN_PERSON",
        specialization=gp,
    )
    online = Service(
        name="Video consultation",
        kind="CONSULTATION",
        duration_minutes=30,
        fee_paise=40_000,
        mode="ONLINE",
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
    peel = Service(
        name="Cosmetic peel",
        kind="CONSULTATION",
        duration_minutes=60,
        fee_paise=120_000,
        mode="IN_PERSON",
        specialization=derm,
        taxable=True,
    )
    db.session.add_all([consult, online, follow, lab, peel])
    admin = _user("admin", f"{tag}1", "Admin One")
    patients = [_user("patient", f"{tag}{i + 1}") for i in range(n_patients)]
    doctors = []
    for i in range(n_doctors):
        u = _user("provider", f"{tag}{i + 1}", f"Dr Doc {i + 1}")
        p = Provider(user=u, kind="DOCTOR", display_name=f"Dr Doc {i + 1}{tag}")
        if registered:
            p.registration_no = f"KMC-{i + 1}{tag}"
        p.clinics = [clinic]
        p.specializations = [gp]
        p.services = [consult, online, follow]
        p.availability = [
            Availability(clinic=clinic, weekday=d, start_time=time(9), end_time=time(18))
            for d in range(5)
        ]
        doctors.append(p)
    lab_user = _user("provider", f"{tag}lab", "City Lab")
    lab_p = Provider(user=lab_user, kind="LAB", display_name=f"City Lab{tag}")
    lab_p.clinics = [clinic]
    lab_p.specializations = [path]
    lab_p.services = [lab]
    lab_p.availability = [
        Availability(clinic=clinic, weekday=d, start_time=time(9), end_time=time(18))
        for d in range(5)
    ]
    derm_user = _user("provider", f"{tag}derm", "Dr Skin")
    derm_p = Provider(user=derm_user, kind="DOCTOR", display_name=f"Dr Skin{tag}")
    derm_p.clinics = [clinic]
    derm_p.specializations = [derm]
    derm_p.services = [peel]
    derm_p.availability = [
        Availability(clinic=clinic, weekday=d, start_time=time(9), end_time=time(18))
        for d in range(5)
    ]
    db.session.add_all(doctors + [lab_p, derm_p])
    db.session.flush()
    child = Dependent(
        guardian_id=patients[0].id,
        name="Little One",
        relationship_="child",
        date_of_birth=date(2018, 1, 1),
    )
    db.session.add(child)
    db.session.commit()
    return SimpleNamespace(
        clinic=clinic.id,
        other_clinic=other.id,
        gp=gp.id,
        consult=consult.id,
        online=online.id,
        follow=follow.id,
        lab=lab.id,
        peel=peel.id,
        admin=admin.id,
        patients=[p.id for p in patients],
        doctors=[d.id for d in doctors],
        lab_provider=lab_p.id,
        derm=derm_p.id,
        child=child.id,
    )


@dataclass
class Gateway:
    """A sandbox on loopback, wired to one portal app."""

    url: str
    sandbox: object
    served: object
    app: object
    saved: dict = field(default_factory=dict)

    def pay(self, order_id, outcome="success", method="upi"):
        """Do what a patient does on the hosted checkout page; returns the callback params."""
        import re
        from urllib.parse import parse_qsl, urlsplit

        callback = "http://portal.test/visits/callback"
        with httpx.Client(base_url=self.url, verify=tls.context()) as browser:
            page = browser.get(f"/checkout/{order_id}", params={"callback_url": callback})
            action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
            answer = browser.post(
                action, data={"callback_url": callback, "method": method, "outcome": outcome}
            )
        return dict(parse_qsl(urlsplit(answer.headers["location"]).query))

    def pay_link(self, link_url, outcome="success"):
        with httpx.Client(verify=tls.context()) as browser:
            answer = browser.post(link_url, data={"method": "upi", "outcome": outcome})
        return answer

    def deliver(self):
        """Send every pending webhook now (into the portal, in-process)."""
        return self.sandbox.deliver_pending(force=True)

    def close(self):
        self.app.config.update(self.saved)
        self.app.extensions.pop("gateway_adapters", None)
        self.sandbox.stop()
        self.served.stop()


def start_gateway(app, deliver_webhooks=True):
    c = app.config
    config = {
        "KEY_ID": c["RAZORPAY_KEY_ID"],
        "KEY_SECRET": c["RAZORPAY_KEY_SECRET"],
        "WEBHOOK_SECRET": c["RAZORPAY_WEBHOOK_SECRET"],
        "WEBHOOK_THREAD": False,
        "SEED": None,
        "CALLBACK_ORIGINS": ("http://portal.test",),  # the checkout returns only there
    }
    if deliver_webhooks:
        config.update(
            WEBHOOK_URL="http://portal.test/webhooks/razorpay",
            WEBHOOK_TRANSPORT=wsgi_transport(app),
        )
    sandbox_app = create_sandbox_app(config)
    served = serve(sandbox_app)
    url = served.url
    gateway = Gateway(
        url,
        sandbox_app.extensions["razorpay_sandbox"],
        served,
        app,
        saved={
            "RAZORPAY_BASE_URL": c["RAZORPAY_BASE_URL"],
            "SANDBOX_INPROCESS": c.get("SANDBOX_INPROCESS"),
        },
    )
    # Real HTTP to this sandbox, not the one mounted in the app.
    c["RAZORPAY_BASE_URL"], c["SANDBOX_INPROCESS"] = url, False
    app.extensions.pop("gateway_adapters", None)
    return gateway


def post_webhook(app, payload, event_id):
    """Deliver a signed Razorpay event to the portal's webhook endpoint."""
    import json

    from portal.gateway.webhooks import sign_body

    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Razorpay-Event-Id": event_id,
        "X-Razorpay-Signature": sign_body(body, app.config["RAZORPAY_WEBHOOK_SECRET"]),
    }
    response = app.test_client().post("/webhooks/razorpay", data=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def captured_event(gateway, payment_id, amount):
    """A ``payment.captured`` event of a payment the sandbox holds, after the sandbox's
    own record is made to say ``amount`` (captures are confirmed against the gateway's
    record, so a wrong amount must be the gateway's)."""
    paid = gateway.sandbox.store.payments[payment_id]
    paid["amount"] = amount
    entity = {
        k: paid.get(k) for k in ("id", "entity", "amount", "order_id", "status", "method", "notes")
    }
    return {
        "entity": "event",
        "event": "payment.captured",
        "contains": ["payment"],
        "payload": {"payment": {"entity": entity}},
        "created_at": 1,
    }


def held_consult(world, day, hour, *, patient=0, doctor=0):
    """A consultation held (unpaid) as the booking page holds it: for
    ``world.patients[patient]`` with ``world.doctors[doctor]``, on ``day`` at ``hour``
    (``at``), in the world's clinic. The item."""
    from portal.booking import visits

    person = db.session.get(User, world.patients[patient])
    return visits.add_item(
        person,
        patient_id=person.id,
        service_id=world.consult,
        provider_ids=[world.doctors[doctor]],
        clinic_id=world.clinic,
        start_at=at(day, hour),
    )


def credit_wallet(user_id, amount):
    """Give a patient wallet money (as a manual adjustment would)."""
    from portal.ledger import accounts as chart
    from portal.ledger.service import credit, debit, post

    post(
        "wallet_adjustment",
        [debit(chart.WALLET_ADJUSTMENTS, amount), credit(chart.patient_wallet(user_id), amount)],
    )
    db.session.commit()


def quoted_checkout(actor, visit_id, wallet_paise=0, callback_url=None, **kwargs):
    """A checkout as the pay button makes it: the amounts it would state for this wallet
    request now (``prices.pay_quote``), then ``checkout`` confirming them (its required
    ``shown``). A refusal (a closed visit, too many attempts) is the checkout's to raise."""
    from portal.booking import checkout, prices
    from portal.booking.models import MasterBooking

    visit = db.session.get(MasterBooking, visit_id)
    shown = prices.pay_quote(visit, wallet_paise) if visit is not None else None
    return checkout.checkout(
        actor,
        visit_id,
        wallet_paise,
        callback_url,
        shown=(shown.wallet_used, shown.amount_due) if shown else (0, 0),
        **kwargs,
    )


def quoted_desk_payment(admin, visit_id, receipt_no, **kwargs):
    """A desk payment as the admin's button makes it: the amount it states now
    (``prices.desk_quote``), then ``record_desk_payment`` confirming it (its required
    ``confirmed_amount``). A refusal (not an admin, no receipt number, a closed visit) is
    the payment's to raise."""
    from portal.booking import checkout, prices
    from portal.booking.models import MasterBooking

    visit = db.session.get(MasterBooking, visit_id)
    shown = prices.desk_quote(visit).amount_due if visit is not None and visit.is_open else 0
    return checkout.record_desk_payment(
        admin, visit_id, receipt_no, confirmed_amount=shown, **kwargs
    )
