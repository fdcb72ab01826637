"""Who may do what: the role decorator, the ownership helper and the response headers."""

import functools
from functools import wraps

from flask import abort, current_app, request
from flask_login import current_user

from portal.extensions import db

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self' {extra_forms}; object-src 'none'"
)


def roles_required(*roles):
    """Anonymous → login page; signed in with another role → 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def guard_blueprint(bp, *roles):
    """Every route of an audience's blueprint requires that audience's role."""

    @bp.before_request
    def _guard():
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()
        if current_user.role not in roles:
            abort(403)


def get_owned_or_404(model, object_id, user=None, options=()):
    """Load an object the user may see, else 404: another's object must not even be
    confirmed to exist. Admins see everything; models say who owns them via owner_ids().
    ``options``: loader options (what the page shows of it, loaded with it)."""
    user = user or current_user
    obj = db.session.get(model, object_id, options=options)
    if obj is None:
        abort(404)
    if getattr(user, "is_admin", False):
        return obj
    if not user.is_authenticated or user.id not in obj.owner_ids():
        abort(404)
    return obj


@functools.lru_cache(maxsize=8)
def _csp(extra):
    return CSP.format(extra_forms=extra).replace("'self' ;", "'self';")


def set_security_headers(response):
    extra = current_app.config.get("CSP_FORM_ACTION_EXTRA", "")
    response.headers.setdefault("Content-Security-Policy", _csp(extra))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    # Portal pages show personal or money data to whoever is signed in: no copy may stay
    # in a browser or proxy cache (back button after logout, a shared computer). Static
    # files (and a response that chose its own caching) keep theirs.
    if request.endpoint != "static" and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
        response.headers.setdefault("Pragma", "no-cache")
    # Pages differ for htmx requests (fragment) and plain ones (full page).
    response.vary.add("HX-Request")
    return response
