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


# ``from_response``'s body when the answer's body could not be parsed as JSON at all.
NOT_JSON = object()

_JSON_KINDS = ((bool, "JSON true or false"), (list, "a JSON array"), (str, "a JSON string"))


def _what(body):
    """What an answer's body that is not the expected object is, in words for the message."""
    if body is NOT_JSON:
        return "a body that is not JSON"
    if body is None:
        return "JSON null"
    for kind, words in _JSON_KINDS:
        if isinstance(body, kind):
            return words
    if isinstance(body, (int, float)):
        return "a JSON number"
    if isinstance(body, dict) and "error" in body:
        return "an object whose error is not an object"
    return "an object with no error"


def unreadable_success(status, body, who="Razorpay"):
    """A 2xx answer whose body is not a JSON object: the request may have been made, so
    the outcome is unknown (retryable; a retry reuses the idempotency key)."""
    said = _what(body) if body is NOT_JSON else f"{_what(body)}, not a JSON object"
    return GatewayUnavailable(f"{who} answered with {said}", status=status)


def items_of(answer, who="Razorpay"):
    """A collection answer's ``items``; one without a list of them is unreadable (its
    callers would index into it: a KeyError in a job, a 500 on a page)."""
    items = answer.get("items")
    if not isinstance(items, list):
        raise GatewayUnavailable(f"{who} answered a list with no list of items", status=200)
    return items


def from_response(status, body, fallback="", *, who="Razorpay"):
    """Map an error answer (status, parsed JSON body: any JSON value, or ``NOT_JSON``) to a
    typed error. Razorpay's errors are ``{"error": {"code", "description", ...}}``; any
    other body (a proxy's page, a WAF's ``[]``, a broken release's ``null``) is typed by
    its status alone, its message saying what came back, and is never ``NotFound``: only
    Razorpay can say an id does not exist (a proxy's 404 parked real payments' events
    and made contacts anew)."""
    error = body.get("error") if isinstance(body, dict) else None
    shaped = isinstance(error, dict)
    error = error if shaped else {}
    if shaped:
        description = error.get("description") or fallback or f"HTTP {status}"
        if not isinstance(description, str):
            description = str(description)
    elif status is None:
        description = fallback or f"No answer from {who}"
    else:
        description = f"{who} answered without its error object: {_what(body)}"
    kwargs = {
        "code": error.get("code") if isinstance(error.get("code"), str) else None,
        "status": status,
        "field": error.get("field") if isinstance(error.get("field"), str) else None,
        "reason": error.get("reason") if isinstance(error.get("reason"), str) else None,
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
    if not shaped:
        return BadRequest(description, **kwargs)
    if status == 404 or "does not exist" in description:
        return NotFound(description, **kwargs)
    if "idempotency" in description.lower():
        return IdempotencyConflict(description, **kwargs)
    return BadRequest(description, **kwargs)
