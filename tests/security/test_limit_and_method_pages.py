"""The pages a limit or a wrong method answers with on the accounts' routes (review I).

The 400 and 413 pages were made the portal's own, in the reader's language (docs/web.md
"Errors": werkzeug's bare English pages on a Hindi session were review findings). The
same holds for what a patient meets at the account routes: a 405 and a 429. And the
limit page must say what was limited."""

import pytest

from portal.accounts.models import User
from portal.extensions import db
from portal.web.limits import wait_sentence
from tests.plugin import PASSWORD, rate_limited

# The two forms under PASSWORD_RESET_RATE_LIMIT, with what each posts (also the boosted
# forms' test, test_limit_page_not_swallowed).
LIMITED_FORMS = [
    ("/auth/forgot-password", {"email": "asha@example.com"}),
    (
        "/auth/register",
        {
            "name": "Asha Rao",
            "email": "asha@example.com",
            "phone": "+91 98123 45678",
            "password": "a long password xyz",
            "confirm": "a long password xyz",
        },
    ),
]


def text(response):
    return response.get_data(as_text=True)


@pytest.mark.parametrize("path,data", LIMITED_FORMS)
def test_the_reset_and_registration_limit_page_says_what_was_limited(app, path, data):
    with rate_limited(app, PASSWORD_RESET_RATE_LIMIT="1 per hour") as limited:
        client = limited.test_client()
        client.post(path, data=data)
        response = client.post(path, data=data)
    assert response.status_code == 429
    page = text(response)
    # The limit is on reset-link / registration requests, for an hour; sign-in is not
    # paused, and waiting "a minute" does not help.
    assert "Too many sign-in attempts" not in page
    assert "paused sign-in" not in page
    assert "wait a minute" not in page
    assert "Too many requests from this device" in page
    assert "Please try again in an hour." in page  # the limit's own window
    assert 'href="/"' in page  # the way back: no Referer, the start page


def test_the_limit_page_is_in_the_readers_language_with_the_way_back(app):
    form = {"email": "asha@example.com"}
    with rate_limited(app, PASSWORD_RESET_RATE_LIMIT="1 per 10 minutes") as limited:
        client = limited.test_client()
        client.set_cookie("lang", "hi")
        client.post("/auth/forgot-password", data=form)
        back = {"Referer": "http://localhost/auth/forgot-password"}
        response = client.post("/auth/forgot-password", data=form, headers=back)
    assert response.status_code == 429
    page = text(response)
    assert 'lang="hi-IN"' in page and "इस डिवाइस से बहुत अधिक अनुरोध" in page
    assert "10 मिनट बाद फिर से कोशिश करें।" in page
    assert 'href="/auth/forgot-password"' in page
    assert response.headers["Cache-Control"] == "no-store"


def test_the_sign_in_limit_page_says_how_long_from_the_limit(app):
    form = {"email": "asha@example.com", "password": "not the password"}
    with rate_limited(app, LOGIN_RATE_LIMIT="1 per hour") as limited:
        client = limited.test_client()
        client.post("/auth/login", data=form)
        response = client.post("/auth/login", data=form)
    assert response.status_code == 429
    page = text(response)
    assert "Too many sign-in attempts" in page
    assert "Please try again in an hour." in page and "wait a minute" not in page


def test_the_close_account_limit_is_the_portals_page_in_the_patients_language(app, make_user):
    user = make_user("patient")
    with app.app_context():
        db.session.get(User, user.id).language = "hi"
        db.session.commit()
        db.session.remove()
    with rate_limited(app, LOGIN_RATE_LIMIT="2 per minute") as limited:
        client = limited.test_client()
        client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
        for _ in range(2):  # the box not ticked: the form again (422)
            assert (
                client.post("/me/account/close", data={"current_password": PASSWORD}).status_code
                == 422
            )
        response = client.post("/me/account/close", data={"current_password": PASSWORD})
    assert response.status_code == 429
    page = text(response)
    assert "<title>429 Too Many Requests</title>" not in page, page[:300]
    assert 'lang="hi-IN"' in page
    # The account page, with the message where the download's limit puts its own.
    assert 'action="/me/account/close#close-account"' in page
    assert "इस डिवाइस से खाता बंद करने की बहुत अधिक कोशिशें" in page
    assert "एक मिनट बाद फिर से कोशिश करें।" in page


def test_a_get_on_the_sign_out_address_is_the_portals_page_in_the_readers_language(client):
    client.set_cookie("lang", "hi")
    response = client.get("/auth/logout")
    assert response.status_code == 405
    page = text(response)
    assert "<title>405 Method Not Allowed</title>" not in page, page[:300]
    assert 'lang="hi-IN"' in page


def test_a_method_an_address_does_not_take_keeps_allow_and_the_headers(client):
    response = client.get("/auth/logout", headers={"Referer": "http://localhost/me/"})
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"POST"}
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    page = text(response)
    assert "That address is not opened this way" in page
    assert 'href="/me/"' in page  # back to the page it came from


def test_a_405_to_htmx_swapping_a_part_is_the_message_alone(client):
    headers = {"HX-Request": "true", "HX-Target": "main"}
    response = client.get("/auth/logout", headers=headers)
    assert response.status_code == 405
    page = text(response)
    assert "That address is not opened this way" in page and "<html" not in page


@pytest.mark.parametrize(
    "seconds,said",
    [
        (1, "Please try again in a minute."),
        (60, "Please try again in a minute."),
        (61, "Please try again in 2 minutes."),
        (600, "Please try again in 10 minutes."),
        (3600, "Please try again in an hour."),
        (7200, "Please try again in 2 hours."),
        (86400, "Please try again in a day."),
        (3 * 86400, "Please try again in 3 days."),
    ],
)
def test_the_wait_said_is_the_limits_window_rounded_up(app, seconds, said):
    with app.test_request_context():
        assert wait_sentence(seconds) == said
