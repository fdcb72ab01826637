"""The sandbox as a WSGI app of its own: served on its own port, or mounted in the portal."""

import json
import os
import time
from datetime import datetime

from flask import Flask, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from wtforms.validators import ValidationError as CSRFError

from portal.gateway.sandbox import api, pages
from portal.gateway.sandbox.common import IST
from portal.gateway.sandbox.delivery import WebhookDispatcher, wsgi_transport
from portal.gateway.sandbox.faults import Faults
from portal.gateway.sandbox.shared import attach
from portal.gateway.sandbox.store import SandboxStore

DEFAULTS = {
    "KEY_ID": "rzp_test_sandbox",
    "KEY_SECRET": "sandbox_secret",
    "ACCOUNT_ID": "acc_Sandbox0000001",
    "X_ACCOUNT_NUMBER": "2323230000000000",
    "WEBHOOK_URL": None,  # pay-in events (payment.*, order.*, refund.*, payment_link.*)
    "WEBHOOK_SECRET": "sandbox_webhook_secret",
    "X_WEBHOOK_URL": None,  # RazorpayX events (payout.*, fund_account.validation.*)
    "X_WEBHOOK_SECRET": "sandbox_webhook_secret",
    "WEBHOOK_THREAD": True,  # deliver (and tick time) in a background thread
    "WEBHOOK_MAX_ATTEMPTS": 5,
    "WEBHOOK_BACKOFF": 1.0,
    "WEBHOOK_TIMEOUT": 5.0,
    "WEBHOOK_SENDERS": 1,  # deliveries sent at once (Razorpay sends in parallel, in no order)
    "WEBHOOK_TRANSPORT": None,  # callable(url, body, headers) -> status; default httpx
    "DELAYS": None,  # see common.DEFAULT_DELAYS
    "FAULTS": None,  # see faults.DEFAULTS; a dict or a JSON string
    "SEED": None,  # ids and fault dice; None = fresh randomness
    "CLOCK": time.time,
    "PUBLIC_URL": None,  # base of short_url; default: the request's own root URL
    # Where the checkout may send the browser back to (origins, e.g. "https://portal.example");
    # default: the origins of WEBHOOK_URL and X_WEBHOOK_URL (the merchant's site).
    "CALLBACK_ORIGINS": None,
    "MOUNTED": False,  # served by the portal: its own origin is a callback origin too
    "CONTROL_AUTHORIZER": None,  # callable(environ) -> bool, besides the key (mounted: admins)
    "MAX_CONTENT_LENGTH": 1024 * 1024,  # API bodies are a few KB; chunked ones are cut too
    # Where the state lives (SQLite or PostgreSQL URL) so that several processes serve one
    # sandbox (shared.py); None = in this process's memory only.
    "DATABASE_URL": None,
}


class Sandbox:
    """One sandbox: its store, its faults and its webhook sender, steerable from Python."""

    def __init__(self, config):
        faults = config["FAULTS"] or {}
        if isinstance(faults, str):
            faults = json.loads(faults)
        self.faults = Faults(**faults)
        self.webhooks = WebhookDispatcher(
            account_id=config["ACCOUNT_ID"],
            faults=self.faults,
            clock=lambda: self.store.now_f(),
            transport=config["WEBHOOK_TRANSPORT"],
            max_attempts=config["WEBHOOK_MAX_ATTEMPTS"],
            backoff=config["WEBHOOK_BACKOFF"],
            timeout=config["WEBHOOK_TIMEOUT"],
            senders=config["WEBHOOK_SENDERS"],
            seed=config["SEED"],
        )
        self.store = SandboxStore(
            key_id=config["KEY_ID"],
            key_secret=config["KEY_SECRET"],
            account_id=config["ACCOUNT_ID"],
            x_account_number=config["X_ACCOUNT_NUMBER"],
            clock=config["CLOCK"],
            delays=config["DELAYS"],
            seed=config["SEED"],
            emit=self._emit,
            faults=self.faults,
        )
        if config.get("DATABASE_URL"):
            attach(self.store, config["DATABASE_URL"])
        self.faults.keep_records_in(self.store)
        self.set_webhook_target("razorpay", config["WEBHOOK_URL"], config["WEBHOOK_SECRET"])
        self.set_webhook_target("razorpayx", config["X_WEBHOOK_URL"], config["X_WEBHOOK_SECRET"])

    def _emit(self, source, name, entities):
        self.webhooks.emit(source, name, entities, created_at=self.store.now())

    # The Python control API (the same as POST {prefix}/_control/...).
    def set_webhook_target(self, source, url, secret):
        self.webhooks.set_target(source, url, secret)

    def set_faults(self, **changes):
        return self.faults.set(**changes)

    def reset_faults(self, records=True, **initial):
        self.faults.reset(records=records, **initial)

    def advance(self, seconds=0.0):
        self.store.advance(seconds)

    def deliver_pending(self, force=True):
        self.store.tick()
        return self.webhooks.deliver_pending(force=force)

    def settle_day(self, day=None):
        return self.store.settle_day(day or self.today())

    # Records made at the gateway behind the portal's back (reconciliation faults).
    def stray_payment(self, amount, method="upi"):
        """A captured payment for an order the portal never made."""
        order = self.store.create_order({"amount": amount, "receipt": "stray"})
        return self.store.pay_order(order["id"], method=method)

    def refund_at_gateway(self, payment_id, amount=None):
        """A refund made on the dashboard, not by the portal."""
        data = {"amount": amount} if amount else {}
        refund, _created = self.store.create_refund(payment_id, data)
        return refund

    def today(self):
        return datetime.fromtimestamp(self.store.now_f(), IST).date()

    def reset(self):
        self.store.reset()
        self.webhooks.reset()
        self.faults.reset()

    def events(self, name=None):
        return [e for e in self.webhooks.events if name is None or e["event"] == name]

    def start(self):
        self.webhooks.start(tick=self.store.tick)

    def stop(self):
        self.webhooks.stop()


def create_sandbox_app(config=None):
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config.update(config or {})
    if app.config["CALLBACK_ORIGINS"] is None:
        app.config["CALLBACK_ORIGINS"] = tuple(
            url for url in (app.config["WEBHOOK_URL"], app.config["X_WEBHOOK_URL"]) if url
        )
    sandbox = Sandbox(app.config)
    app.extensions["razorpay_sandbox"] = sandbox
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.after_request(_baseline_headers)

    @app.errorhandler(HTTPException)
    def _http_error(error):
        # API callers get Razorpay's error shape; browsers get the plain page.
        if not request.path.startswith("/v1/") and not request.path.startswith("/_control/"):
            return error
        body = {
            "error": {
                "code": "BAD_REQUEST_ERROR",
                "description": "The requested URL was not found on the server."
                if error.code == 404
                else error.description,
                "source": "NA",
                "step": "NA",
                "reason": "NA",
                "metadata": {},
            }
        }
        return jsonify(body), error.code

    if app.config["WEBHOOK_THREAD"]:
        sandbox.start()
    return app


# What every sandbox answer carries unless it set its own (the checkout pages set a CSP
# that lets their form post back to the merchant). Mounted in the portal, the sandbox
# sits behind a dispatcher the portal's own header hook never sees.
BASELINE_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; style-src 'self'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
)


def _baseline_headers(response):
    for name, value in BASELINE_HEADERS:
        if name not in response.headers:
            response.headers[name] = value
    return response


def portal_admin_check(portal_app):
    """``CONTROL_AUTHORIZER`` for the mounted sandbox: is the request's portal session an
    active admin's? (Same origin, so the portal's session cookie comes along.) A change
    (reset, advance, deliver …) also needs the portal's CSRF token in ``X-CSRFToken``, as
    every portal form does: the cookie alone would let any page the admin visits post one.
    Only the header is read: the body stays unread for the sandbox's own request."""

    def is_portal_admin(environ):
        with portal_app.request_context(environ):
            user = current_user._get_current_object()
            if not (user.is_authenticated and getattr(user, "is_admin", False)):
                return False
            if request.method in ("GET", "HEAD", "OPTIONS"):
                return True
            if not portal_app.config.get("WTF_CSRF_ENABLED", True):
                return True
            try:
                validate_csrf(request.headers.get("X-CSRFToken"))
            except CSRFError:
                return False
            return True

    return is_portal_admin


def sandbox_database_url(portal_app):
    """SANDBOX_DATABASE_URL, else a SQLite file in the instance folder, so every process
    of the portal serves the same sandbox (and a restart keeps the orders the portal's
    database refers to); tests keep it in memory unless they name a database."""
    url = portal_app.config.get("SANDBOX_DATABASE_URL")
    if url or portal_app.config.get("TESTING"):
        return url or None
    return "sqlite:///" + os.path.join(portal_app.instance_path, "sandbox.sqlite3")


def mount_sandbox(portal_app, prefix="/sandbox"):
    """Serve the sandbox inside the portal under ``prefix`` (the embedded default).

    Its keys and webhook secrets are the portal's own RAZORPAY_* settings, and its
    webhooks go to the portal's /webhooks endpoints (over HTTP, or in-process when
    SANDBOX_INPROCESS is set, e.g. in tests using the Flask test client)."""
    c = portal_app.config
    public = c.get("PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/")
    config = {
        "KEY_ID": c["RAZORPAY_KEY_ID"],
        "KEY_SECRET": c["RAZORPAY_KEY_SECRET"],
        "X_ACCOUNT_NUMBER": c["RAZORPAYX_ACCOUNT_NUMBER"],
        "WEBHOOK_URL": c.get("SANDBOX_WEBHOOK_URL", public + "/webhooks/razorpay"),
        "WEBHOOK_SECRET": c["RAZORPAY_WEBHOOK_SECRET"],
        "X_WEBHOOK_URL": c.get("SANDBOX_X_WEBHOOK_URL", public + "/webhooks/razorpayx"),
        "X_WEBHOOK_SECRET": c["RAZORPAYX_WEBHOOK_SECRET"],
        "WEBHOOK_THREAD": c.get("SANDBOX_WEBHOOK_THREAD", not c.get("TESTING", False)),
        # Faults for a whole run may come from the environment (JSON), like the other knobs.
        "FAULTS": c.get("SANDBOX_FAULTS") or os.environ.get("SANDBOX_FAULTS"),
        "DELAYS": c.get("SANDBOX_DELAYS"),
        "SEED": c.get("SANDBOX_SEED"),
        "PUBLIC_URL": public + prefix,
        # The portal itself (and any further origins the portal names, e.g. a test host).
        "CALLBACK_ORIGINS": (public, *c.get("SANDBOX_CALLBACK_ORIGINS", ())),
        "MOUNTED": True,
        "CONTROL_AUTHORIZER": portal_admin_check(portal_app),
        "MAX_CONTENT_LENGTH": c.get("MAX_CONTENT_LENGTH") or DEFAULTS["MAX_CONTENT_LENGTH"],
        "DATABASE_URL": sandbox_database_url(portal_app),
    }
    if c.get("SANDBOX_INPROCESS"):
        config["WEBHOOK_TRANSPORT"] = wsgi_transport(portal_app)
    sandbox_app = create_sandbox_app(config)
    portal_app.wsgi_app = DispatcherMiddleware(portal_app.wsgi_app, {prefix: sandbox_app})
    portal_app.extensions["razorpay_sandbox"] = sandbox_app.extensions["razorpay_sandbox"]
    portal_app.extensions["razorpay_sandbox_app"] = sandbox_app
    portal_app.config.setdefault("SANDBOX_PREFIX", prefix)
    return sandbox_app.extensions["razorpay_sandbox"]


def follow_public_url(portal_app, public_url):
    """The embedded server runs somewhere else than the PUBLIC_URL it started with
    (``flask serve --port N``): move the portal's own URL, the SDK's address of the mounted
    sandbox, the sandbox's links, its return origins and its webhook targets there, so
    paying works on any port."""
    c = portal_app.config
    old = c.get("PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/")
    public = public_url.rstrip("/")
    prefix = c.get("SANDBOX_PREFIX", "/sandbox")
    c["PUBLIC_URL"] = public
    if c.get("RAZORPAY_BASE_URL", "").rstrip("/") == old + prefix:
        c["RAZORPAY_BASE_URL"] = public + prefix
    portal_app.extensions.pop("gateway_adapters", None)  # built for the old address
    sandbox_app = portal_app.extensions.get("razorpay_sandbox_app")
    if sandbox_app is None:
        return
    sc = sandbox_app.config
    sc["PUBLIC_URL"] = public + prefix
    sc["CALLBACK_ORIGINS"] = tuple(public if o == old else o for o in sc["CALLBACK_ORIGINS"])
    sandbox = portal_app.extensions["razorpay_sandbox"]
    if not c.get("SANDBOX_WEBHOOK_URL"):
        sandbox.set_webhook_target(
            "razorpay", public + "/webhooks/razorpay", c["RAZORPAY_WEBHOOK_SECRET"]
        )
    if not c.get("SANDBOX_X_WEBHOOK_URL"):
        sandbox.set_webhook_target(
            "razorpayx", public + "/webhooks/razorpayx", c["RAZORPAYX_WEBHOOK_SECRET"]
        )
