"""The pay step reaches a payment gateway on another origin: Razorpay's hosted checkout is a
form posted to api.razorpay.com, and ``make prod`` runs the sandbox as its own process on
another port. The CSP's ``form-action`` (which also checks where a form's redirect goes)
said only 'self', so the browser refused the post and nobody could pay (review finding)."""

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.threads import serve
from tests.web.booking.helpers import build_catalog, hold, weekday_ahead

pytestmark = pytest.mark.e2e


def test_the_pay_button_reaches_a_gateway_on_another_origin(app, make_user, live_server, page):
    if "razorpay_sandbox" not in app.extensions:
        from portal.gateway.sandbox import mount_sandbox

        mount_sandbox(app, prefix="/sandbox")
    other = serve(app)  # the same app on a second port: the gateway's own origin
    saved = app.config.get("RAZORPAY_BASE_URL")
    app.config["RAZORPAY_BASE_URL"] = other.url + "/sandbox"
    app.extensions.pop("gateway_adapters", None)
    try:
        with app.app_context():
            world = build_catalog(make_user)
        world.patient = make_user("patient", name="Priya Sharma")
        world.day = weekday_ahead()
        visit_id, _ = hold(app, world)
        sign_in(page, world.patient.email, PASSWORD)
        page.goto(f"/me/visits/{visit_id}")
        page.click("#pay")
        page.wait_for_url(other.url + "/sandbox/checkout/**", timeout=10_000)
    finally:
        app.config["RAZORPAY_BASE_URL"] = saved
        app.extensions.pop("gateway_adapters", None)
        other.stop()


def test_the_csp_lets_the_hosted_checkout_form_go_to_razorpay(app, client):
    saved = app.config.get("RAZORPAY_BASE_URL")
    app.config["RAZORPAY_BASE_URL"] = "https://api.razorpay.com"
    try:
        csp = client.get("/auth/login").headers["Content-Security-Policy"]
    finally:
        app.config["RAZORPAY_BASE_URL"] = saved
    form_action = next(p for p in csp.split(";") if p.strip().startswith("form-action"))
    assert form_action.split()[1:] == ["'self'", "https://api.razorpay.com"]
