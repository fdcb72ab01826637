"""A gateway's return as the browser posts it cross-site: without the session cookie
(SameSite=Lax). Its answer must set no session cookie either: one holding only a flash
would replace the patient's and sign them out (``portal.web.patient.gateway_returns``)."""


def session_cookies(app, response):
    """The session cookies ``response`` sets (``Set-Cookie`` headers, as sent)."""
    name = app.config["SESSION_COOKIE_NAME"]
    return [c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{name}=")]


def post_cross_site(app, path, fields):
    """POST ``fields`` to ``path`` from a fresh client (no cookie of the patient's): the
    answer, checked to be a 303 that sets no session cookie."""
    answer = app.test_client().post(path, data=fields)
    assert answer.status_code == 303
    assert session_cookies(app, answer) == []
    return answer
