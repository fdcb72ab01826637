"""What a checkout's return (a visit's, a reschedule fee's) carries, and the fixed outcome
codes its POST form hands on.

Razorpay's hosted checkout sends the browser back with a cross-site form POST. The browser
sends no session cookie with it (SameSite=Lax), so that answer must not touch the session:
a flash there would set a new session cookie holding only the flash, replacing the
patient's and signing them out. The POST verifies and writes (the signature is the proof),
then redirects to a signed-in GET with one of these codes, which tells the patient (with
the ownership check and, for a visit, what is left of its hold; a capture that did not pay
the visit, its ``booking.paid.Outcome``: ``wallet``, ``refunded``). A code, not the gateway's
fields: the signature stays out of the address bar, the history and the logs, and the GET
shows a fixed message for a fixed code, never text from the request."""

from flask import abort

from portal.booking.errors import MSG_BAD_SIGNATURE, MSG_CONFIRMING, MSG_NOT_PAID, PaymentError
from portal.booking.paid import ELSEWHERE, Outcome
from portal.extensions import csrf

PAID = "paid"
UNPAID = {"unverified": MSG_BAD_SIGNATURE, "unpaid": MSG_NOT_PAID, "confirming": MSG_CONFIRMING}


def callback_params(values):
    """The gateway's fields of a return, nothing else of the request."""
    return {k: v for k, v in values.items() if k.startswith("razorpay_") or k.startswith("error[")}


def posted_params(form):
    """The POST return's gateway fields. CSRF-exempt *only* when it carries them (the
    gateway sends no token); anything else must pass the usual CSRF check (400)."""
    params = callback_params(form)
    if not params.get("razorpay_signature") and not params.get("error[description]"):
        csrf.protect()  # not the gateway: a tokenless post stops here (400)
        abort(400)
    return params


def outcome_of(exc):
    """The code for a return that did not pay (``PaymentError`` with a fixed message)."""
    return next((code for code, message in UNPAID.items() if message == exc.message), "unverified")


def paid_elsewhere(code):
    """The ``booking.paid.Outcome`` a code stands for when the payment was captured but
    did not pay the visit (in the wallet, refunded), else None."""
    return Outcome(code) if code in ELSEWHERE else None


def unpaid_error(code):
    """The PaymentError a code stands for, or None for no such code."""
    message = UNPAID.get(code)
    return PaymentError(message) if message else None
