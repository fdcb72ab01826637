"""Password hashing with argon2id. Cost parameters come from config so tests stay fast."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app, has_app_context


def _hasher():
    params = current_app.config.get("ARGON2_PARAMS") if has_app_context() else None
    return PasswordHasher(**(params or {}))


def hash_password(password):
    return _hasher().hash(password)


def needs_rehash(password_hash):
    """True when the hash was made with other cost parameters than the configured ones
    (rehashed at the next sign-in)."""
    try:
        return _hasher().check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return False


def verify_password(password_hash, password):
    """True when the password matches; never raises for a wrong or malformed hash."""
    if not password_hash:
        return False
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
