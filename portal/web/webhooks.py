"""Razorpay and RazorpayX webhooks: verify the signature on the raw body, store the event
once under its event id, answer 200 at once; a job processes it after the commit."""

import json

from flask import Blueprint, current_app, request

from portal.gateway.webhook_processing import record_event
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


def receive(source, secret):
    if (request.content_length or 0) > MAX_BODY:
        return {"error": "body too large"}, 413
    raw = request.get_data()
    event_id = request.headers.get("X-Razorpay-Event-Id", "").strip()
    if not verify_signature(raw, request.headers.get("X-Razorpay-Signature"), secret):
        log_event(
            "webhook",
            source=source,
            event_id=event_id[:64] or None,
            status="rejected",
            reason="bad signature",
            remote=request.remote_addr,
        )
        current_app.logger.warning(
            "webhook with a bad signature from %s (%s)", request.remote_addr, source
        )
        return {"error": "invalid signature"}, 400
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or not payload.get("event"):
        return {"error": "not a Razorpay event"}, 400
    if not event_id or len(event_id) > 64:
        return {"error": "missing X-Razorpay-Event-Id"}, 400
    row_id, created = record_event(source, event_id, payload)
    log_event(
        "webhook",
        source=source,
        event_id=event_id,
        event=payload["event"],
        status="stored" if created else "duplicate",
        row=row_id,
    )
    return {"status": "stored" if created else "duplicate"}, 200
