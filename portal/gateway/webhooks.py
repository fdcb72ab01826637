"""Webhook signatures: Razorpay signs the raw body with HMAC-SHA256 and the webhook secret.

Verification is the official SDK's own (``razorpay.Utility.verify_webhook_signature``,
which compares in constant time); ``sign_body`` is for the sandbox and tests."""

import hashlib
import hmac

import razorpay
from razorpay.errors import SignatureVerificationError

_utility = razorpay.Utility()


def sign_body(raw_body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()


def verify_signature(raw_body: bytes, signature: str | None, secret: str | None) -> bool:
    """True when ``signature`` is the body's HMAC.

    The raw bytes are what was signed: re-serialised JSON would not match. The SDK takes
    text, so the body is decoded as the UTF-8 Razorpay sends (anything else is refused)."""
    if not signature or not secret:
        return False
    try:
        body = raw_body.decode("utf-8")
        return bool(_utility.verify_webhook_signature(body, signature.strip(), secret))
    except (SignatureVerificationError, UnicodeDecodeError):
        return False
    except TypeError:  # hmac.compare_digest refuses non-ASCII text: not a hex signature
        return False
