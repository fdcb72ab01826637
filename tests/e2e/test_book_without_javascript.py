"""The book page in Chromium with JavaScript off: choosing another family member and
pressing "Show" names that person's unpaid visit (the note named the account's newest
unpaid visit's person whoever was chosen), and the hold joins that visit."""

import re

import pytest

from portal.booking.models import MasterBooking
from portal.extensions import db
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.web.booking.conftest import world  # noqa: F401  (the fixture)
from tests.web.booking.helpers import book_url, hold, slot

pytestmark = pytest.mark.e2e


@pytest.fixture
def no_js_page(browser, app, live_server):
    """A page with JavaScript off (no htmx: every form is a plain one), CSRF on."""
    app.config["WTF_CSRF_ENABLED"] = True
    context = browser.new_context(
        base_url=live_server,
        locale="en-IN",
        timezone_id="Asia/Kolkata",
        java_script_enabled=False,
    )
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()
    app.config["WTF_CSRF_ENABLED"] = False


def test_without_javascript_the_note_follows_the_person_shown(app, no_js_page, world):
    page = no_js_page
    aarav_visit, _ = hold(app, world, start=slot(world.day, 9), dependent=world.child)
    hold(app, world, start=slot(world.day, 11))  # Priya's, the newest: named by default
    with app.app_context():
        number = db.session.get(MasterBooking, aarav_visit).number

    sign_in(page, world.patient.email, PASSWORD)
    page.goto(book_url(world, start=slot(world.day, 14)))
    assert "For Priya Sharma, this is added" in page.locator("#for-person").inner_text()

    page.select_option("select[name=person]", value=f"dependent:{world.child}")
    page.click("button[name=show]")
    page.wait_for_url(re.compile(r"/me/book\?.*person=dependent"))
    note = page.locator("#for-person").inner_text()
    assert f"For Aarav (child), this is added to the unpaid visit {number}" in note
    assert page.locator("select[name=person]").input_value() == f"dependent:{world.child}"

    page.click("text=Hold this slot")
    page.wait_for_url(re.compile(rf"/me/visits/{aarav_visit}$"))
    assert page.locator("article[id^=item-]").count() == 2
