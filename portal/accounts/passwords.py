"""Password hashing with argon2id. Cost parameters come from config so tests stay fast."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app, has_app_context


def _hasher():
    params = current_app.config.get("ARGON2_PARAMS") if has_app_context() else None
    return PasswordHasher(**(params or {}))


def hash_password(password):
    return _hasher().hash(password)


def verify_password(password_hash, password):
    """True when the password matches; never raises for a wrong or malformed hash."""
    if not password_hash:
        return False
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
