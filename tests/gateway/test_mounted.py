"""The sandbox mounted inside the portal at /sandbox, reached in-process (no socket)."""

from urllib.parse import parse_qsl, urlsplit

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.extensions import db
from portal.gateway import get_payin, get_payouts
from portal.gateway.models import WebhookEvent
from portal.gateway.sandbox import mount_sandbox

SHARED = (
    "TESTING",
    "SECRET_KEY",
    "SQLALCHEMY_DATABASE_URI",
    "WTF_CSRF_ENABLED",
    "RATELIMIT_ENABLED",
    "JOBS_INLINE",
    "JOBS_INLINE_THREAD",
    "PERIODIC_INLINE",
    "SESSION_COOKIE_SECURE",
)


@pytest.fixture
def portal(app):
    """A second portal app on the test database, with the sandbox mounted in-process."""
    portal = create_app(
        {
            **{k: app.config[k] for k in SHARED if k in app.config},
            "SANDBOX_INPROCESS": True,
            "SANDBOX_WEBHOOK_THREAD": False,
            "RAZORPAY_BASE_URL": "http://127.0.0.1:5000/sandbox",
            "PUBLIC_URL": "http://127.0.0.1:5000",
        }
    )
    if "razorpay_sandbox" not in portal.extensions:  # the lead's create_app may mount it
        mount_sandbox(portal)
    yield portal
    for adapter in portal.extensions.get("gateway_adapters", {}).values():
        adapter.close()
    sandbox = portal.extensions["razorpay_sandbox"]
    sandbox.stop()
    transport = sandbox.webhooks.transport
    if transport is not None and hasattr(transport, "close"):
        transport.close()


def test_checkout_refund_payout_and_webhooks_in_process(portal):
    sandbox = portal.extensions["razorpay_sandbox"]
    browser = portal.test_client()
    with portal.app_context():
        payin = get_payin()
        assert get_payin() is payin  # built once per app and config
        order = payin.create_order(30_000, receipt="mounted-1")
        page = browser.get(
            f"/sandbox/checkout/{order['id']}",
            query_string={"callback_url": "http://127.0.0.1:5000/pay/cb"},
        )
        assert page.status_code == 200 and b"Pay" in page.data
        answer = browser.post(
            f"/sandbox/checkout/{order['id']}",
            data={"callback_url": "http://127.0.0.1:5000/pay/cb", "outcome": "success"},
        )
        assert answer.status_code == 303
        params = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
        assert payin.verify_payment_signature(
            order["id"], params["razorpay_payment_id"], params["razorpay_signature"]
        )
        refund = payin.create_refund(params["razorpay_payment_id"], 5_000, "mounted-rf")
        assert refund["status"] == "pending"

        payouts = get_payouts()
        contact = payouts.create_contact("Dr Sen")
        account = payouts.create_fund_account(contact["id"], vpa="sen@okhdfc")
        payout = payouts.create_payout(
            "mounted-po", fund_account_id=account["id"], amount=10_000, mode="UPI"
        )
        assert payout["status"] == "queued"

    sandbox.advance(10)
    results = sandbox.deliver_pending()
    assert results and all(status == 200 for _id, status in results)
    with portal.app_context():
        stored = db.session.scalars(sa.select(WebhookEvent)).all()
        assert {e.event_type for e in stored} >= {
            "payment.captured",
            "order.paid",
            "refund.processed",
            "payout.processed",
        }
        assert all(e.processed_at is not None for e in stored)


BASELINE = (
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
)


@pytest.mark.parametrize(
    "path", ["/sandbox/nope", "/sandbox/_control/state", "/sandbox/_static/sandbox.css"]
)
def test_the_mounted_sandbox_answers_with_the_baseline_headers(client, make_user, login, path):
    # The sandbox is a Flask app of its own behind the portal's dispatcher: the portal's
    # after_request hook never sees its answers, so it must send the headers itself.
    login(make_user("admin"))
    response = client.get(path)
    assert [h for h in BASELINE if h not in response.headers] == [], response.status_code
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_the_sandbox_checkout_page_keeps_its_own_policy_and_gains_the_rest():
    from portal.gateway.sandbox import create_sandbox_app

    sandbox_app = create_sandbox_app({"WEBHOOK_THREAD": False})
    response = sandbox_app.test_client().get("/checkout/nope")
    assert "form-action *" in response.headers.get("Content-Security-Policy", "")
    assert response.headers.get("Referrer-Policy") == "same-origin"
    assert response.headers.get("X-Frame-Options") == "DENY"
