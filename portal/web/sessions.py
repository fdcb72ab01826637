"""The session cookie: Flask's signed cookie, opened without work when there is none.

``leave_alone``: a request that arrived without the session cookie (a form another site
posted here: SameSite=Lax keeps the cookie off a cross-site POST) must not answer with one.
The browser would store that new session in place of its own, signing the person out."""

from flask import current_app, request
from flask.sessions import SecureCookieSessionInterface

# Marked in the request's environ, not ``g``: an app context may outlive a request (one
# pushed around several, as the tests do), a request's environ never does.
_LEAVE_ALONE = "portal.session_left_alone"


def leave_alone():
    """This request's session is not written back (no ``Set-Cookie``), whatever it holds,
    when the request came without the session cookie; a no-op otherwise (the browser's own
    session is saved as usual)."""
    name = current_app.session_interface.get_cookie_name(current_app)
    if not request.cookies.get(name):
        request.environ[_LEAVE_ALONE] = True


class CookieSessions(SecureCookieSessionInterface):
    """Flask's own sessions. A request without the cookie (most anonymous ones, such as a
    kept free-times answer) gets the empty session at once: Flask builds the signer for
    every request before it looks at the cookie."""

    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if request.environ.get(_LEAVE_ALONE):
            return  # see leave_alone
        super().save_session(app, session, response)
