"""What an open page does once its session has ended elsewhere (review I).

Logout (and a password change, a reset, a deactivation) ends every session of the user on
every device (docs/security.md, "Sessions end everywhere"). The other devices' open pages
go on: the bell polls every 30 s (htmx, outerHTML swap) and forms are still posted. Both
must lead the person to the sign-in page as a page, and back to where they were
(``portal.web.signed_out``)."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.plugin import PASSWORD

HX_BELL = {
    "HX-Request": "true",
    "HX-Target": "notification-bell",
    "HX-Trigger": "notification-bell",
    "HX-Current-URL": "http://localhost/me/",
}
HX_DIRECTIVES = ("HX-Redirect", "HX-Location", "HX-Refresh")


def _end_sessions_elsewhere(app, client, token=None):
    """The same person signs out on another device (a copy of the cookie)."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    data = {"csrf_token": token} if token else {}
    assert other.post("/auth/logout", data=data).status_code == 303


def test_the_bells_poll_after_the_session_ended_is_not_answered_with_the_sign_in_page(
    app, client, make_user, login
):
    login(make_user("patient"))
    assert client.get("/notifications/bell", headers=HX_BELL).status_code == 200
    _end_sessions_elsewhere(app, client)

    response = client.get("/notifications/bell", headers=HX_BELL)
    # htmx's XHR follows a plain redirect by itself and swaps what it gets (a 200) into the
    # target: the whole sign-in page (header, nav, form) would replace the bell inside the
    # top bar. An htmx request must be told to leave the page (HX-Redirect/-Location/
    # -Refresh) or be answered with nothing to swap.
    plain_redirect = response.status_code in (301, 302, 303, 307, 308) and not any(
        name in response.headers for name in HX_DIRECTIVES
    )
    if plain_redirect:
        followed = client.get(response.headers["Location"], headers=HX_BELL)
        swapped = followed.get_data(as_text=True)
        assert not (followed.status_code == 200 and "<html" in swapped), (
            f"the bell's poll got {response.status_code} → {response.headers['Location']}, "
            f"and following it swaps a whole page ({len(swapped)} chars, "
            f"title {re.search(r'<title>(.*?)</title>', swapped).group(1)!r}) into the bell"
        )


def test_a_form_posted_after_the_session_ended_does_not_end_on_a_405_after_signing_in(
    app, client, make_user, login, monkeypatch
):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    user = make_user("patient")
    page = client.get("/auth/login").get_data(as_text=True)
    token = page.split('"X-CSRFToken": "', 1)[1].split('"', 1)[0]
    login_data = {"email": user.email, "password": PASSWORD, "csrf_token": token}
    assert client.post("/auth/login", data=login_data).status_code == 303
    page = client.get("/notifications/").get_data(as_text=True)
    token = page.split('"X-CSRFToken": "', 1)[1].split('"', 1)[0]
    _end_sessions_elsewhere(app, client, token)

    # "Mark all read" pressed on the page that was open: the token is still the session's
    # (CSRF passes), the user is gone, so the person is sent to sign in.
    response = client.post("/notifications/read-all", data={"csrf_token": token})
    assert response.status_code == 302 and response.location.startswith("/auth/login")
    page = client.get(response.location).get_data(as_text=True)
    token = page.split('"X-CSRFToken": "', 1)[1].split('"', 1)[0]
    hidden_next = re.search(r'name="next"[^>]*value="([^"]*)"', page)
    login_data.update(csrf_token=token, next=hidden_next.group(1) if hidden_next else "")
    signed_in = client.post("/auth/login", data=login_data)
    assert signed_in.status_code == 303

    landing = client.get(signed_in.location)
    assert landing.status_code < 400, (
        f"signed in again, sent to {signed_in.location}: {landing.status_code} "
        f"{landing.get_data(as_text=True)[:120]!r}"
    )


def _next_of(url):
    parts = urlsplit(url)
    assert parts.path == "/auth/login", url
    return parse_qs(parts.query).get("next", [None])[0]


def test_the_bells_poll_is_sent_to_sign_in_as_a_page_and_back_to_the_page_it_was_on(
    app, client, make_user, login
):
    login(make_user("patient"))
    _end_sessions_elsewhere(app, client)

    response = client.get("/notifications/bell", headers=HX_BELL)
    assert response.status_code == 401 and "Location" not in response.headers
    assert response.get_data() == b""  # nothing to swap into the bell
    assert _next_of(response.headers["HX-Redirect"]) == "/me/"  # not the bell's address
    assert response.headers["X-Frame-Options"] == "DENY"  # the headers every answer gets
    # The sign-in page it loads says why.
    page = client.get(response.headers["HX-Redirect"]).get_data(as_text=True)
    assert "Please sign in to see that page." in page and 'value="/me/"' in page


@pytest.mark.parametrize(
    "current", ["http://elsewhere.example/me/", "http://localhost//elsewhere.example/", ""]
)
def test_a_poll_from_a_page_not_ours_is_sent_to_sign_in_with_no_way_back(client, current):
    headers = {**HX_BELL, "HX-Current-URL": current}
    response = client.get("/notifications/bell", headers=headers)
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/auth/login"


def test_the_admin_dashboards_poll_is_sent_to_sign_in_as_a_page(app, client, make_user, login):
    login(make_user("admin"))
    _end_sessions_elsewhere(app, client)
    headers = {
        "HX-Request": "true",
        "HX-Target": "dashboard",
        "HX-Current-URL": "http://localhost/admin/",
    }
    response = client.get("/admin/dashboard", headers=headers)
    assert response.status_code == 401
    assert _next_of(response.headers["HX-Redirect"]) == "/admin/"


def test_a_boosted_link_comes_back_to_the_page_it_leads_to(client):
    headers = {"HX-Request": "true", "HX-Boosted": "true", "HX-Current-URL": "http://localhost/"}
    response = client.get("/me/visits?status=open", headers=headers)
    assert response.status_code == 401
    assert _next_of(response.headers["HX-Redirect"]) == "/me/visits?status=open"


def test_a_page_without_htmx_is_still_a_redirect_back_to_it(client):
    response = client.get("/me/visits?status=open")
    assert response.status_code == 302
    assert _next_of(response.location) == "/me/visits?status=open"


@pytest.mark.parametrize(
    "headers,expected",
    [
        ({"Referer": "http://localhost/notifications/?unread=1"}, "/notifications/?unread=1"),
        ({"Referer": "http://elsewhere.example/notifications/"}, None),
        ({}, None),
        (
            {"HX-Request": "true", "HX-Boosted": "true", "HX-Current-URL": "http://localhost/me/"},
            "/me/",
        ),
    ],
)
def test_a_post_comes_back_to_the_page_its_form_was_on_never_to_its_own_address(
    client, headers, expected
):
    response = client.post("/notifications/read-all", headers=headers)
    url = response.headers.get("HX-Redirect") or response.location
    assert response.status_code == (401 if "HX-Request" in headers else 302)
    assert _next_of(url) == expected
