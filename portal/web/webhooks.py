"""Razorpay and RazorpayX webhooks: verify the signature on the raw body, check the event's
shape, store it once under its event id (across both endpoints), answer 200 at once; a job
processes it after the commit, unless every handler of its type said it would do nothing
with it (a capture repeating the signed return: stored processed, no job).

Refusals: a body over 1 MB (chunked ones too) → 413; a bad signature → 400; a signed body
that is not ``application/json`` → 415; not JSON, nested too deeply, or an event of the
wrong shape → 400 with the reason (logged), so it is never stored to crash its handler."""

import json

from flask import Blueprint, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from portal.gateway.webhook_processing import DUPLICATE, record_event
from portal.gateway.webhook_shapes import shape_problem
from portal.gateway.webhooks import verify_signature
from portal.logs import log_event

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

MAX_BODY = 1024 * 1024  # Razorpay's events are a few KB


@bp.post("/razorpay")
def razorpay():
    return receive("razorpay", current_app.config.get("RAZORPAY_WEBHOOK_SECRET"))


@bp.post("/razorpayx")
def razorpayx():
    return receive("razorpayx", current_app.config.get("RAZORPAYX_WEBHOOK_SECRET"))


def _read_body():
    """The raw body, at most MAX_BODY bytes: werkzeug stops reading a chunked body (no
    Content-Length) at the limit instead of buffering it whole. None when over."""
    app_limit = current_app.config.get("MAX_CONTENT_LENGTH")
    request.max_content_length = min(MAX_BODY, app_limit) if app_limit else MAX_BODY
    try:
        return request.get_data(cache=True)
    except RequestEntityTooLarge:
        return None


def _reject(source, event_id, status, reason):
    log_event(
        "webhook",
        source=source,
        event_id=event_id[:64] or None,
        status="rejected",
        reason=reason,
        remote=request.remote_addr,
    )
    return {"error": reason}, status


def receive(source, secret):
    event_id = request.headers.get("X-Razorpay-Event-Id", "").strip()
    raw = _read_body()
    if raw is None:
        return _reject(source, event_id, 413, "body too large")
    if not verify_signature(raw, request.headers.get("X-Razorpay-Signature"), secret):
        current_app.logger.warning(
            "webhook with a bad signature from %s (%s)", request.remote_addr, source
        )
        return _reject(source, event_id, 400, "invalid signature")
    if request.mimetype != "application/json":
        return _reject(source, event_id, 415, "Content-Type must be application/json")
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: a body nested thousands deep
        return _reject(source, event_id, 400, "not a Razorpay event: the body is not JSON")
    problem = shape_problem(payload)
    if problem:
        return _reject(source, event_id, 400, f"not a Razorpay event: {problem}")
    if not event_id or len(event_id) > 64 or not event_id.isprintable():
        return _reject(source, event_id, 400, "missing X-Razorpay-Event-Id")
    row_id, status = record_event(source, event_id, payload)
    log_event(
        "webhook",
        source=source,
        event_id=event_id,
        event=payload["event"],
        status=status,
        row=row_id,
    )
    # Razorpay is told only stored or duplicate: a settled event is stored.
    return {"status": "duplicate" if status == DUPLICATE else "stored"}, 200
