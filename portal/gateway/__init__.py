"""Razorpay: the pay-in adapter (official SDK), the RazorpayX payouts adapter (httpx),
typed errors, webhook verification, and a Razorpay-compatible sandbox.

``get_payin()`` / ``get_payouts()`` build the adapters from the current app's config
(cached per app). Secrets come only from the config, i.e. from the environment."""

import httpx
from flask import current_app

from portal.gateway.errors import (
    AuthenticationFailed,
    BadRequest,
    GatewayError,
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyConflict,
    NotFound,
    SignatureError,
)
from portal.gateway.inprocess import wsgi_session
from portal.gateway.payin import RazorpayPayIn
from portal.gateway.payouts import RazorpayXPayouts

__all__ = [
    "get_payin",
    "get_payouts",
    "RazorpayPayIn",
    "RazorpayXPayouts",
    "GatewayError",
    "GatewayUnavailable",
    "GatewayTimeout",
    "BadRequest",
    "AuthenticationFailed",
    "NotFound",
    "IdempotencyConflict",
    "SignatureError",
]


def _cached(app, key, build):
    cache = app.extensions.setdefault("gateway_adapters", {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def _inprocess(app):
    """When the sandbox is mounted in this app and SANDBOX_INPROCESS is set, call it
    without a socket (tests with the Flask test client, no server running)."""
    return bool(app.config.get("SANDBOX_INPROCESS")) and "razorpay_sandbox" in app.extensions


def get_payin(app=None):
    app = app or current_app._get_current_object()
    c = app.config
    key = (
        "payin",
        c["RAZORPAY_KEY_ID"],
        c["RAZORPAY_KEY_SECRET"],
        c["RAZORPAY_BASE_URL"],
        _inprocess(app),
    )

    def build():
        session = None
        if _inprocess(app):
            session = wsgi_session(app, c["RAZORPAY_BASE_URL"], c.get("RAZORPAY_TIMEOUT", 10))
        return RazorpayPayIn(
            c["RAZORPAY_KEY_ID"],
            c["RAZORPAY_KEY_SECRET"],
            c["RAZORPAY_BASE_URL"],
            timeout=c.get("RAZORPAY_TIMEOUT", 10),
            retries=c.get("RAZORPAY_RETRIES", 2),
            session=session,
        )

    return _cached(app, key, build)


def get_payouts(app=None):
    app = app or current_app._get_current_object()
    c = app.config
    key = (
        "payouts",
        c["RAZORPAY_KEY_ID"],
        c["RAZORPAY_KEY_SECRET"],
        c["RAZORPAY_BASE_URL"],
        c["RAZORPAYX_ACCOUNT_NUMBER"],
        _inprocess(app),
    )

    def build():
        transport = None
        if _inprocess(app):
            transport = httpx.WSGITransport(app=app)
        return RazorpayXPayouts(
            c["RAZORPAY_KEY_ID"],
            c["RAZORPAY_KEY_SECRET"],
            c["RAZORPAYX_ACCOUNT_NUMBER"],
            c["RAZORPAY_BASE_URL"],
            timeout=c.get("RAZORPAY_TIMEOUT", 10),
            retries=c.get("RAZORPAY_RETRIES", 3),
            transport=transport,
        )

    return _cached(app, key, build)
