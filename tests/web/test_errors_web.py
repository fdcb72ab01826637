"""One error mapping (portal.web.errors) and flashes delivered out-of-band on htmx swaps."""

import re

import pytest
from werkzeug.exceptions import BadRequest

from portal import create_app
from portal.accounts.service import NotFound, PermissionDenied, ValidationError
from portal.booking.errors import BookingError
from portal.domain.states import InvalidTransition
from tests.conftest import _test_config
from tests.logrecords import logged

HX = {"HX-Request": "true"}


def text(response):
    return response.get_data(as_text=True)


@pytest.fixture(scope="module")
def raising_app(app):
    """A second app on the same database with routes that raise what services raise (the
    session's app cannot take new routes once it has served a request)."""
    other = create_app(_test_config(app.config["SQLALCHEMY_DATABASE_URI"]))
    other.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the 500 page
    errors = {
        "booking": BookingError("That slot was just taken.", field="start_at"),
        "validation": ValidationError({"email": "That email is already registered."}),
        "transition": InvalidTransition("booking", "CANCELLED", "CONFIRMED"),
        "missing": NotFound("no such thing"),
        "denied": PermissionDenied("not yours"),
        "crash": RuntimeError("boom"),
        "bad": BadRequest(),  # abort(400), or werkzeug refusing what it cannot read
    }

    def raiser(kind):
        raise errors[kind]

    other.add_url_rule("/_raise/<kind>", view_func=raiser)
    return other


def test_unknown_page_is_the_404_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in text(response) and "<html" in text(response)


def test_another_role_gets_the_403_page(client, make_user, login):
    login(make_user("patient"))
    response = client.get("/admin/visits")
    assert response.status_code == 403 and "Not allowed" in text(response)


@pytest.mark.parametrize(
    "kind,status,message",
    [
        ("missing", 404, "Page not found"),
        ("denied", 403, "Not allowed"),
        ("booking", 422, "That slot was just taken."),
        ("validation", 422, "That email is already registered."),
        ("transition", 422, "it has changed meanwhile"),
    ],
)
def test_service_errors_map_to_pages(raising_app, kind, status, message):
    response = raising_app.test_client().get(f"/_raise/{kind}")
    assert response.status_code == status
    assert message in text(response)


@pytest.fixture
def web_log():
    """What portal.web logs (``tests.logrecords``: caplog does not see it)."""
    with logged("portal.web") as records:
        yield records


def test_anything_else_is_a_friendly_500_with_the_request_id(raising_app, web_log):
    client = raising_app.test_client()
    response = client.get("/_raise/crash", headers={"X-Request-ID": "req-abc-123"})
    assert response.status_code == 500
    body = text(response)
    assert "Something went wrong on our side" in body and "boom" not in body
    assert '<code id="request-id">req-abc-123</code>' in body
    assert response.headers["X-Request-ID"] == "req-abc-123"
    assert any("req-abc-123" in r.getMessage() and r.exc_info for r in web_log)
    # Without a caller's id the page names the one the log line carries.
    response = client.get("/_raise/crash")
    rid = response.headers["X-Request-ID"]
    assert rid and f">{rid}<" in text(response)


def test_flashes_travel_out_of_band_with_an_htmx_fragment(app, client, make_user, login):
    login(make_user("patient"))
    response = client.post(
        "/me/dependents",
        headers=HX,
        data={"name": "Anya Rao", "relationship": "child", "date_of_birth": "2019-04-02"},
    )
    assert response.status_code == 303
    fragment = text(client.get(response.location, headers=HX))
    assert "<html" not in fragment
    oob = re.search(
        r'<div id="flashes"[^>]*hx-swap-oob="innerHTML"[^>]*>(.*?)</div>', fragment, re.S
    )
    assert oob and "Anya Rao added." in oob.group(1)
    assert fragment.count("Anya Rao added.") == 1  # only out-of-band, not in the block too
    # Shown once: the next fragment empties the flash area.
    again = text(client.get("/me/dependents", headers=HX))
    assert 'hx-swap-oob="innerHTML"' in again and "Anya Rao added." not in again


def test_a_history_restore_gets_the_whole_page(client, make_user, login):
    """Back to a page htmx kept no snapshot of: htmx asks for it with HX-Request and
    HX-History-Restore-Request and swaps the whole body, so the answer is the page (a
    fragment request to the same address gets its block)."""
    login(make_user("patient"))
    restore = {**HX, "HX-History-Restore-Request": "true"}
    assert "<html" not in text(client.get("/me/dependents", headers=HX))
    page = text(client.get("/me/dependents", headers=restore))
    assert "<html" in page and "<main" in page


def test_an_empty_flash_area_is_the_template_without_messages(app):
    """``htmx.EMPTY_FLASHES`` stands for the template when there is nothing to show."""
    from flask import render_template

    from portal.web import htmx

    with app.test_request_context("/"):
        assert htmx.oob_flashes() == htmx.EMPTY_FLASHES
        assert render_template(htmx.FLASHES, oob=True) == htmx.EMPTY_FLASHES


def test_a_full_page_shows_flashes_in_place(client, make_user, login):
    login(make_user("patient"))
    client.post(
        "/me/dependents",
        data={"name": "Anya Rao", "relationship": "child", "date_of_birth": "2019-04-02"},
    )
    page = text(client.get("/me/dependents", headers={**HX, "HX-Boosted": "true"}))
    assert "hx-swap-oob" not in page
    assert re.search(
        r'<div id="flashes"[^>]*>\s*<p class="flash flash-success"[^>]*>'
        r"Anya Rao added\.</p>",
        page,
    )


def test_the_polled_bell_leaves_flashes_for_the_page(client, make_user, login):
    login(make_user("patient"))
    client.post(
        "/me/dependents",
        data={"name": "Anya Rao", "relationship": "child", "date_of_birth": "2019-04-02"},
    )
    bell = text(client.get("/notifications/bell", headers=HX))
    assert "Anya Rao added." not in bell and "hx-swap-oob" not in bell
    assert "Anya Rao added." in text(client.get("/me/dependents"))


def test_post_button_carries_the_csrf_token(app, client, make_user, login):
    login(make_user("patient"))
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        page = text(client.get("/me/"))
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    logout = re.search(
        r'<form method="post" action="/auth/logout"[^>]*>\s*'
        r'<input type="hidden" name="csrf_token" value="([^"]+)">\s*'
        r'<button type="submit" class="link">Sign out</button>',
        page,
    )
    assert logout and len(logout.group(1)) > 20


BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}


@pytest.mark.parametrize(
    "url, data, message",
    [
        (
            "/admin/reconciliation/runs",
            {"first_day": "2026-12-05", "last_day": "2026-12-01"},
            "The last day must not be before the first day",
        ),
        ("/admin/visits/new/patient", {"name": "", "email": ""}, None),
    ],
)
def test_a_refused_boosted_form_keeps_the_address_bar(client, make_user, login, url, data, message):
    """A boosted form answered with its page (422) left the post's address in the address
    bar; it has no GET, so reloading it was a bare 405 (review finding, walking the demo).
    The answer now says not to push it; a GET page keeps its own."""
    login(make_user("admin"))
    answer = client.post(url, data=data, headers=BOOSTED)
    assert answer.status_code == 422
    if message:
        assert message in answer.get_data(as_text=True)
    assert answer.headers.get("HX-Push-Url") == "false"
    assert client.get(url).status_code == 405  # why it matters
    page = client.get("/admin/reconciliation", headers=BOOSTED)
    assert page.status_code == 200 and "HX-Push-Url" not in page.headers


def test_a_form_posted_with_a_stale_csrf_token_gets_the_portals_page(app, make_user):
    """Signed out in another tab, the session gone: the post's CSRF check fails. It got
    werkzeug's bare English "400 Bad Request" (review finding): now the portal's page, in
    the reader's language, with the way back to the form's page."""
    make_user("patient", email="asha@example.com")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        client = app.test_client()
        client.set_cookie("lang", "hi")
        page = client.get("/auth/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        client.delete_cookie("session")
        response = client.post(
            "/auth/login",
            data={"csrf_token": token, "email": "asha@example.com", "password": "whatever-1"},
            headers={"Referer": "http://localhost/auth/login"},
        )
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'lang="hi' in html and "फ़ॉर्म की अवधि समाप्त हो गई" in html
    assert 'href="/auth/login"' in html


def test_a_boosted_form_with_a_stale_token_is_sent_to_the_form_expired_page(app, make_user):
    """htmx swaps no 400: a boosted form's stale token left the page as it was, with a
    generic "reload" message (a browser walk): it is sent to the form-expired page, which
    links back to the form's page."""
    make_user("patient", email="asha@example.com")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        client = app.test_client()
        page = client.get("/auth/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        client.delete_cookie("session")
        response = client.post(
            "/auth/login",
            data={"csrf_token": token, "email": "asha@example.com", "password": "whatever-1"},
            headers={**BOOSTED, "Referer": "http://localhost/auth/login?next=/me/"},
        )
        assert response.status_code == 400
        target = response.headers["HX-Redirect"]
        shown = client.get(target)
        assert shown.status_code == 200 and "The form expired" in shown.get_data(as_text=True)
        assert 'href="/auth/login?next=/me/"' in shown.get_data(as_text=True)
        outside = client.get("/auth/form-expired?back=//evil.example/x").get_data(as_text=True)
        assert 'href="//evil.example' not in outside and 'href="/"' in outside
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_a_nul_in_the_address_gets_the_portals_400_page_in_the_readers_language(app, make_user):
    """Review finding (a doctor's week): a NUL in the address (``refuse_nul_in_query``)
    gave werkzeug's bare English "Bad Request" to a Hindi reader. It is the portal's page,
    in the reader's language, with a way back: the page's own address without the query
    for a GET, the start page when the path itself is what cannot be read."""
    from tests.plugin import PASSWORD

    make_user("provider", email="lab@example.com")
    client = app.test_client()
    client.post("/auth/login", data={"email": "lab@example.com", "password": PASSWORD})
    client.post("/language", data={"language": "hi", "next": "/"})
    response = client.get("/provider/earnings/tds?fy=%00")
    html = text(response)
    assert response.status_code == 400
    assert "Bad Request" not in html and 'lang="hi' in html
    assert "यह अनुरोध पढ़ा नहीं जा सका" in html
    assert 'href="/provider/earnings/tds"' in html
    # English, signed out; a NUL in the path: the start page is the way back.
    anonymous = app.test_client()
    response = anonymous.get("/find?q=a%00b")
    assert response.status_code == 400 and "That request could not be read" in text(response)
    assert 'href="/find"' in text(response)
    response = anonymous.get("/find%00x")
    assert response.status_code == 400 and "That request could not be read" in text(response)
    assert 'href="/"' in text(response) and "\x00" not in text(response)


def test_an_htmx_request_refused_with_400_gets_a_fragment(app):
    """An htmx request that swaps part of a page gets the message alone (htmx swaps no
    400; the site's script says it), not a whole page; a boosted one (a navigation) the
    page."""
    client = app.test_client()
    response = client.get("/find?q=a%00b", headers=HX)
    assert response.status_code == 400
    assert "That request could not be read" in text(response) and "<html" not in text(response)
    response = client.get("/find?q=a%00b", headers=BOOSTED)
    assert response.status_code == 400 and "<html" in text(response)


def test_every_other_400_gets_the_portals_page(raising_app):
    """``abort(400)`` elsewhere (a form refused) is the same page, back to the page the
    request came from when it is the portal's; never another site's."""
    client = raising_app.test_client()
    response = client.get("/_raise/bad", headers={"Referer": "http://localhost/me/wallet"})
    assert response.status_code == 400
    assert "That request could not be read" in text(response)
    assert 'href="/me/wallet"' in text(response)
    response = client.get("/_raise/bad", headers={"Referer": "https://evil.example/me/"})
    assert 'href="https://evil.example' not in text(response)
    assert 'href="/_raise/bad"' in text(response)


TOO_LARGE = 1024 * 1024 + 1  # one byte over MAX_CONTENT_LENGTH's default


def test_a_body_over_the_limit_gets_the_portals_413_page_in_the_readers_language(app):
    """Review finding: a form posted with a body over ``MAX_CONTENT_LENGTH`` got werkzeug's
    bare English "413 Request Entity Too Large". It is the portal's page, in the reader's
    language, saying nothing was changed and linking back to the page the form was on."""
    client = app.test_client()
    client.post("/language", data={"language": "hi", "next": "/"})
    response = client.post(
        "/auth/login",
        data=b"a" * TOO_LARGE,
        content_type="application/x-www-form-urlencoded",
        headers={"Referer": "http://localhost/auth/login?next=/me/"},
    )
    html = text(response)
    assert response.status_code == 413
    assert "Request Entity Too Large" not in html and 'lang="hi' in html
    assert "भेजी गई जानकारी बहुत बड़ी थी" in html
    assert 'href="/auth/login?next=/me/"' in html
    # English, no page of ours before it: the start page is the way back.
    response = app.test_client().post(
        "/auth/login", data=b"a" * TOO_LARGE, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413 and "That was too large to send" in text(response)
    assert 'href="/"' in text(response)


def test_an_htmx_request_over_the_limit_gets_a_fragment(app):
    """htmx swaps no 413 (the site's script says it, ``data-413``): the message alone."""
    response = app.test_client().post(
        "/auth/login",
        data=b"a" * TOO_LARGE,
        content_type="application/x-www-form-urlencoded",
        headers=HX,
    )
    assert response.status_code == 413
    assert "That was too large to send" in text(response) and "<html" not in text(response)


def test_a_webhook_over_the_limit_keeps_its_plain_answer(app):
    """The gateway is no reader of pages: its 413 stays the short JSON refusal."""
    response = app.test_client().post(
        "/webhooks/razorpay", data=b"a" * TOO_LARGE, content_type="application/json"
    )
    assert response.status_code == 413
    assert response.get_json() == {"error": "body too large"}
