"""How the payout engine reaches RazorpayX: the app's adapter (``portal.gateway.get_payouts``)
behind the request rate limit.

Settings: ``RAZORPAYX_RATE_LIMIT`` (requests per second, default 5; 0 or None = no
limit), ``RAZORPAYX_RATE_BURST`` (bucket size, default = the rate, at least 1); with
``REDIS_URL`` the bucket is in Redis, shared by every process. Tests and the benchmark
may install their own adapter or bucket with :func:`install`."""

from flask import current_app
from redis import Redis

from portal.config import TUNABLES
from portal.gateway import get_payouts
from portal.payouts.ratelimit import LimitedGateway, RedisTokenBucket, TokenBucket

DEFAULT_RATE = TUNABLES["RAZORPAYX_RATE_LIMIT"].default_value


def _state(app):
    return app.extensions.setdefault("payouts_gateway", {})


def install(app, *, adapter=None, bucket=None):
    """Use this adapter and/or bucket for the app's payouts (None keeps the default)."""
    state = _state(app)
    if adapter is not None:
        state["adapter"] = adapter
    if bucket is not None:
        state["bucket"] = bucket
    state.pop("limited", None)


def uninstall(app):
    app.extensions.pop("payouts_gateway", None)


def bucket(app=None):
    app = app or current_app._get_current_object()
    state = _state(app)
    if "bucket" not in state:
        rate = app.config.get("RAZORPAYX_RATE_LIMIT", DEFAULT_RATE)
        rate = float(rate) if rate not in (None, "", 0, "0") else None
        burst = app.config.get("RAZORPAYX_RATE_BURST")
        burst = float(burst) if burst else None
        if app.config.get("REDIS_URL"):
            # One budget for every worker process on every machine.
            state["bucket"] = RedisTokenBucket(Redis.from_url(app.config["REDIS_URL"]), rate, burst)
        else:
            state["bucket"] = TokenBucket(rate, burst)
    return state["bucket"]


def gateway(app=None):
    """The rate-limited RazorpayX payouts adapter."""
    app = app or current_app._get_current_object()
    state = _state(app)
    adapter = state.get("adapter")
    if adapter is None:
        adapter = get_payouts(app)
    limited = state.get("limited")
    if limited is None or limited.adapter is not adapter:
        limited = state["limited"] = LimitedGateway(adapter, bucket(app))
    return limited
