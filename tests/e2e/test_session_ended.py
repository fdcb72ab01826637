"""An open page whose session ended on another device (signing out there ends every
session, docs/security.md), in Chromium (review I).

* The bell polls every 30 s (htmx, outerHTML): it followed the plain redirect and swapped
  the whole sign-in page into the top bar. Now the browser goes to the sign-in page.
* "Mark all read" pressed on the open page led, after signing in again, to the post's
  own address: a bare 405. Now back to the notifications page."""

import pytest
from playwright.sync_api import expect

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.extensions import db
from portal.notify.center import notify_in_app
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e


def _signed_out_elsewhere(app, user):
    with app.app_context():
        accounts.end_sessions(user.id, "logout")
        db.session.remove()


def test_the_bells_poll_takes_the_browser_to_sign_in_and_back(app, page, make_user):
    user = make_user("patient")
    sign_in(page, user.email, PASSWORD)
    page.goto("/me/")
    expect(page.locator("#notification-bell")).to_be_visible()
    _signed_out_elsewhere(app, user)

    # The poll's 30 s, at once: the bell listens for this event on the body.
    page.evaluate("() => htmx.trigger(document.body, 'notifications-changed')")
    page.wait_for_url("**/auth/login?next=/me/")
    expect(page.locator("h1")).to_have_text("Sign in")
    assert page.locator("header").count() == 1  # a page, not one inside the top bar
    expect(page.locator("#flashes")).to_contain_text("Please sign in to see that page.")

    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/me/")


def test_mark_all_read_after_the_session_ended_comes_back_to_the_notifications(
    app, page, make_user
):
    user = make_user("patient")
    with app.app_context():
        notify_in_app([db.session.get(User, user.id)], "test", "Hello", "A notice")
        db.session.commit()
        db.session.remove()
    sign_in(page, user.email, PASSWORD)
    page.goto("/notifications/")
    _signed_out_elsewhere(app, user)

    page.click("text=Mark all read")
    page.wait_for_url("**/auth/login?next=/notifications/")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/notifications/")
    expect(page.locator("h1")).to_have_text("Notifications")
