"""The templates' ``csrf_token()``: the portal's (Flask-WTF's context processor no longer
shadows it), one token a request for the layout and the forms, signed anew each request."""

import re

from portal import templating
from tests.cross_site import session_cookies

TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"')
FORM_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def test_templates_get_the_portals_csrf_token(app):
    assert app.jinja_env.globals["csrf_token"] is templating.csrf_token
    with app.test_request_context("/"):
        context = {}
        app.update_template_context(context)
    assert "csrf_token" not in context  # no context processor hands another one


def test_a_page_and_its_form_share_one_token_that_posts(app, client, make_user, login, monkeypatch):
    login(make_user("patient"))
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    page = client.get("/me/dependents").get_data(as_text=True)
    header, form = TOKEN.findall(page), FORM_TOKEN.findall(page)
    assert form and len(set(header + form)) == 1
    answer = client.post(
        "/me/dependents", data={"csrf_token": form[0], "name": "Aarav", "relationship": "child"}
    )
    assert answer.status_code == 303
    refused = client.post("/me/dependents", data={"name": "Meera", "relationship": "child"})
    assert refused.status_code == 400


def test_a_cross_site_post_without_the_session_cookie_sets_none(
    app, client, make_user, login, monkeypatch
):
    """A form another site posts here arrives without the SameSite=Lax session cookie and
    fails the CSRF check. Its 400 page rendered a CSRF token into a new session, whose
    cookie replaced the browser's: any site could sign a patient out by a form post."""
    login(make_user("patient"))
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    for path in ("/auth/login", "/auth/logout", "/me/visits/1/pay", "/me/visits/1/paid"):
        answer = app.test_client().post(path, data={})
        assert answer.status_code == 400, path
        assert session_cookies(app, answer) == [], path
    # The signed-in browser's own post without a token still gets its page and session.
    refused = client.post("/me/dependents", data={"name": "Meera", "relationship": "child"})
    assert refused.status_code == 400
    assert client.get("/me/dependents").status_code == 200  # still signed in
