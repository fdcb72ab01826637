"""Webhook signatures: Razorpay signs the raw body with HMAC-SHA256 and the webhook secret."""
import hashlib
import hmac


def sign_body(raw_body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()


def verify_signature(raw_body: bytes, signature: str | None, secret: str | None) -> bool:
    """True when ``signature`` is the body's HMAC; compared in constant time.

    The raw bytes are what was signed: re-serialised JSON would not match."""
    if not signature or not secret:
        return False
    expected = sign_body(raw_body, secret)
    return hmac.compare_digest(expected.encode(), signature.strip().encode())
