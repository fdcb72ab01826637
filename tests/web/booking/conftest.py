"""Fixtures for the booking pages: a small catalog (one clinic open Mon–Fri 09–18 IST, two
doctors, a lab), a patient with a dependent, and a sandbox gateway on loopback."""

from datetime import date

import pytest

import portal.booking.tasks  # noqa: F401  (jobs + webhook handlers; until create_app imports it)
from portal.accounts.models import Dependent
from portal.extensions import db
from tests.web.booking.helpers import build_catalog, weekday_ahead


@pytest.fixture
def world(app, make_user):
    """Catalog + a patient (with a dependent) + a second patient + an admin."""
    patient = make_user("patient", name="Priya Sharma", phone="+919812345678")
    other = make_user("patient", name="Other Patient", phone="+919800000001")
    admin = make_user("admin", name="Ops Admin")
    with app.app_context():
        ids = build_catalog(make_user)
        child = Dependent(
            guardian_id=patient.id,
            name="Aarav",
            relationship_="child",
            date_of_birth=date(2018, 5, 1),
        )
        db.session.add(child)
        db.session.commit()
        ids.child = child.id
    ids.patient, ids.other, ids.admin = patient, other, admin
    ids.day = weekday_ahead()
    return ids


@pytest.fixture
def gateway(app):
    """The sandbox mounted in the app at /sandbox, reached in-process by the SDK
    (SANDBOX_INPROCESS, the suite's default): nothing listens on a socket."""
    if "razorpay_sandbox" not in app.extensions:
        from portal.gateway.sandbox import mount_sandbox

        mount_sandbox(app, prefix="/sandbox")
    saved = {k: app.config.get(k) for k in ("SANDBOX_INPROCESS", "RAZORPAY_BASE_URL")}
    app.config["SANDBOX_INPROCESS"] = True
    if not app.config["RAZORPAY_BASE_URL"].rstrip("/").endswith("/sandbox"):
        app.config["RAZORPAY_BASE_URL"] = app.config["PUBLIC_URL"].rstrip("/") + "/sandbox"
    app.extensions.pop("gateway_adapters", None)
    # Each test starts with an empty gateway, as its database starts empty: on SQLite the
    # visit numbers start again at V000001, and a link's reference_id (unique at Razorpay)
    # found the link an earlier test had paid.
    app.extensions["razorpay_sandbox"].reset()
    yield app.extensions["razorpay_sandbox"]
    app.config.update(saved)
    app.extensions.pop("gateway_adapters", None)
