"""``portal.web.csrf``: the request's CSRF token signed once per session token, and passing
Flask-WTF's own check exactly as a token it signed itself."""

import re

from flask_wtf.csrf import generate_csrf, validate_csrf

from portal.web import csrf

TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"')
FORM_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def _page_tokens(client, path):
    page = client.get(path).get_data(as_text=True)
    return TOKEN.findall(page), FORM_TOKEN.findall(page)


def test_a_page_and_its_form_share_one_token_signed_once_per_session(
    app, client, make_user, login, monkeypatch
):
    login(make_user("patient"))
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    csrf._signed.cache_clear()
    header, form = _page_tokens(client, "/me/dependents")  # the layout's and a form's
    assert len(set(header + form)) == 1 and form
    again, _ = _page_tokens(client, "/me/dependents")
    assert again == header  # the same signed token: signed once, then kept
    assert csrf._signed.cache_info().misses == 1
    # A page without a form: its layout's token is this one too, not signed again (Flask-WTF's
    # own context processor would hand the template its function instead).
    hits = csrf._signed.cache_info().hits
    assert _page_tokens(client, "/me/")[0] == header
    assert csrf._signed.cache_info().hits == hits + 1 and csrf._signed.cache_info().misses == 1
    # Flask-WTF's own check takes it: the form posts (a new family member is added).
    answer = client.post(
        "/me/dependents",
        data={"csrf_token": form[0], "name": "Aarav", "relationship": "child"},
    )
    assert answer.status_code == 303
    refused = client.post("/me/dependents", data={"name": "Meera", "relationship": "child"})
    assert refused.status_code == 400


def test_another_session_gets_its_own_token(app, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    tokens = []
    for _ in range(2):
        client = app.test_client()
        first = _page_tokens(client, "/auth/login")[0]  # a new session: its raw token made
        assert _page_tokens(client, "/auth/login")[0] == first  # then kept
        tokens.append(first[0])
    assert tokens[0] != tokens[1]


def test_the_kept_token_is_what_flask_wtf_would_sign(app):
    with app.test_request_context("/"):
        from flask import g, session

        session["csrf_token"] = "a" * 40
        ours = csrf.csrf_token()
        assert g.csrf_token == ours
        validate_csrf(ours)  # raises when it does not pass
        del g.csrf_token
        theirs = generate_csrf()
        # Both sign the same raw token with the same key and salt; only the time differs.
        assert ours.split(".")[0] == theirs.split(".")[0]


def test_with_a_time_limit_every_request_signs_its_own(app, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_TIME_LIMIT", 3600)
    csrf._signed.cache_clear()
    with app.test_request_context("/"):
        from flask import session

        session["csrf_token"] = "b" * 40
        validate_csrf(csrf.csrf_token())
    assert csrf._signed.cache_info().currsize == 0
