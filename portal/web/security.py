"""Who may do what: the role decorator, the ownership helper and the response headers."""

from functools import lru_cache, wraps
from urllib.parse import urlsplit

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
    return owned_or_404(db.session.get(model, object_id, options=options), user)


def owned_or_404(obj, user=None):
    """``obj`` (loaded by the caller, None when missing) if the user may see it, else 404:
    ``get_owned_or_404``'s check for an object a page loads its own way."""
    user = user or current_user
    if obj is None:
        abort(404)
    if getattr(user, "is_admin", False):
        return obj
    if not user.is_authenticated or user.id not in obj.owner_ids():
        abort(404)
    return obj


@lru_cache(maxsize=8)
def _gateway_origin(base_url):
    """The payment gateway's origin, where the pay step's forms go: Razorpay's hosted
    checkout is a form posted to it, and a sandbox run as its own process (``make prod``)
    is another origin the pay step redirects to, which ``form-action`` checks too. The
    portal's own (the mounted sandbox) adds nothing. Without it nobody could pay."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"


@lru_cache(maxsize=8)
def _defaults(extra_forms, secure):
    """The headers every answer gets unless it set its own (built once per setting)."""
    headers = [
        (
            "Content-Security-Policy",
            CSP.format(extra_forms=extra_forms).replace("'self' ;", "'self';"),
        ),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ]
    if secure:
        headers.append(("Strict-Transport-Security", "max-age=31536000"))
    return tuple((name, name.lower(), value) for name, value in headers)


def set_security_headers(response):
    config = current_app.config
    headers = response.headers
    # The names present, read once (Headers.setdefault raises and catches a KeyError for
    # each name missing: most of this hook's time on a small answer).
    present = {name.lower() for name, _ in headers.items()}
    defaults = _defaults(
        _gateway_origin(config.get("RAZORPAY_BASE_URL") or ""),
        bool(config.get("SESSION_COOKIE_SECURE")),
    )
    for name, lowered, value in defaults:
        if lowered not in present:
            headers.add(name, value)
    # Portal pages show personal or money data to whoever is signed in: no copy may stay
    # in a browser or proxy cache (back button after logout, a shared computer). Static
    # files (and a response that chose its own caching) keep theirs.
    if request.endpoint != "static" and "cache-control" not in present:
        headers["Cache-Control"] = "no-store"
        if "pragma" not in present:
            headers.add("Pragma", "no-cache")
    # Pages differ for htmx requests (fragment) and plain ones (full page).
    response.vary.add("HX-Request")
    return response
