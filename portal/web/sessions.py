"""The session cookie: Flask's signed cookie, opened without work when there is none."""

from flask.sessions import SecureCookieSessionInterface


class CookieSessions(SecureCookieSessionInterface):
    """Flask's own sessions. A request without the cookie (most anonymous ones, such as a
    kept free-times answer) gets the empty session at once: Flask builds the signer for
    every request before it looks at the cookie."""

    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)
