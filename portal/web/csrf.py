"""The request's CSRF token for pages and forms: Flask-WTF's, signed once per session token.

Flask-WTF signs the session's raw token again on every request that shows a form or the
page layout (80 µs: a serializer, its key derivation, JSON and an HMAC). The portal sets no
time limit on a token (``WTF_CSRF_TIME_LIMIT`` None: it lives as long as its session), so
a token signed a minute ago passes ``validate_csrf`` exactly as a new one would, and the
signed form is kept per process for the raw token. With a time limit set every request
signs its own, as Flask-WTF does."""

from functools import lru_cache

from flask import current_app, session
from flask.globals import _cv_app  # where Flask-WTF keeps the request's token: g
from flask_wtf.csrf import _FlaskFormCSRF, generate_csrf
from itsdangerous import URLSafeTimedSerializer

FIELD = "csrf_token"  # Flask-WTF's default name, in the session and in g


@lru_cache(maxsize=4096)
def _signed(secret_key, raw_token):
    return URLSafeTimedSerializer(secret_key, salt="wtf-csrf-token").dumps(raw_token)


def csrf_token():
    """The request's signed token (made once a request; a page asks three times: htmx's
    header, the sign-out form, the language switch), as ``generate_csrf()`` gives it."""
    app_ctx = _cv_app.get(None)
    if app_ctx is None:
        return generate_csrf()
    token = getattr(app_ctx.g, FIELD, None)
    if token is not None:
        return token
    config = current_app.config
    raw = session.get(FIELD)
    if (
        not isinstance(raw, str)
        or config.get("WTF_CSRF_TIME_LIMIT") is not None
        or config.get("WTF_CSRF_FIELD_NAME", FIELD) != FIELD
    ):
        return generate_csrf()  # a new session's first token, or settings this skips
    secret = config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
    token = _signed(secret, raw)
    setattr(app_ctx.g, FIELD, token)
    return token


class FormCSRF(_FlaskFormCSRF):
    """Flask-WTF's form CSRF, its token from ``csrf_token()`` (``PortalForm``'s)."""

    def generate_csrf_token(self, csrf_token_field):
        return csrf_token()
