"""Typed gateway errors: what a service can act on.

- ``retryable`` errors (GatewayUnavailable, GatewayTimeout) mean "try again later with the
  same idempotency key"; after a GatewayTimeout the outcome is unknown, so never switch
  to a new key (the first attempt may have succeeded).
- BadRequest and its kinds mean Razorpay refused the request; retrying will not help.
  ``after_unanswered`` on an error says an earlier try of the same call (the adapter's own
  retry) went unanswered: a refusal then proves nothing about that earlier request."""


class GatewayError(Exception):
    retryable = False
    # The request may have taken effect at Razorpay (no answer, or an error answer).
    ambiguous = True
    # An earlier try of this call, under the same idempotency key, may have taken effect
    # (set by ``retry.with_retries``): a refusal of the last try is no proof nothing was made.
    after_unanswered = False

    def __init__(
        self, description="", *, code=None, status=None, field=None, reason=None, response=None
    ):
        super().__init__(description)
        self.description = description
        self.code = code
        self.status_code = status  # the HTTP status of the answer (None: no answer)
        self.field = field
        self.reason = reason
        self.response = response or {}

    def __str__(self):
        parts = [self.description or self.__class__.__name__]
        if self.status_code:
            parts.append(f"(HTTP {self.status_code}{', ' + self.code if self.code else ''})")
        return " ".join(parts)


class GatewayUnavailable(GatewayError):
    """5xx, 429, 409 (the key's first request still in progress) or a network error:
    nothing (or nothing known) happened; retry later."""

    retryable = True


class GatewayTimeout(GatewayUnavailable):
    """No answer in time: the request may or may not have taken effect."""

    def __init__(self, description="", *, idempotency_key=None, **kwargs):
        super().__init__(description, **kwargs)
        self.idempotency_key = idempotency_key


class BadRequest(GatewayError):
    """Razorpay refused the request (4xx); ``description`` says why, ``field`` where."""


class AuthenticationFailed(BadRequest):
    """The key id / secret were refused (401): a configuration problem."""


class NotFound(BadRequest):
    """The id does not exist at Razorpay."""


class IdempotencyConflict(BadRequest):
    """The idempotency key was used before with a different request body."""


class SignatureError(GatewayError):
    """A checkout, payment-link or webhook signature did not verify."""


def from_response(status, body, fallback=""):
    """Map an error answer (status, parsed JSON body or None) to a typed error."""
    error = (body or {}).get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    description = error.get("description") or fallback or f"HTTP {status}"
    kwargs = {
        "code": error.get("code"),
        "status": status,
        "field": error.get("field"),
        "reason": error.get("reason"),
        "response": body if isinstance(body, dict) else {},
    }
    # 409: a request under this idempotency key is still being processed; Razorpay says
    # to retry it (the same key), so it is no refusal (docs/gateway.md).
    if (
        status is None
        or status >= 500
        or status in (409, 429)
        or status < 400
        or kwargs["code"] in ("SERVER_ERROR", "GATEWAY_ERROR")
    ):
        return GatewayUnavailable(description, **kwargs)
    if status == 401:
        return AuthenticationFailed(description, **kwargs)
    if status == 404 or "does not exist" in description:
        return NotFound(description, **kwargs)
    if "idempotency" in description.lower():
        return IdempotencyConflict(description, **kwargs)
    return BadRequest(description, **kwargs)
