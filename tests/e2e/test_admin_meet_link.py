"""The admin visit page's meeting-link form in Chromium: a refused link comes back in its
field with why beside it (the form alone swapped in place, the address kept), and the
corrected one is saved."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.web.booking.conftest import world  # noqa: F401  (the fixture)
from tests.web.booking.helpers import hold, online_service, slot

pytestmark = pytest.mark.e2e


def test_a_refused_link_stays_in_its_field_and_the_corrected_one_is_saved(
    app,
    page,
    world,  # noqa: F811
):
    service_id = online_service(app, world)
    visit_id, item_id = hold(app, world, service=service_id, start=slot(world.day, 14))
    sign_in(page, world.admin.email, PASSWORD)
    page.goto(f"/admin/visits/{visit_id}")
    box = page.locator(f"#meet-link-{item_id}")
    field = page.locator(f"#meet-{item_id}")
    field.fill("http://zoom.us/j/1")
    box.locator("button[type=submit]").click()
    expect(box.locator("p.error")).to_have_text("Meeting links must use https")
    expect(field).to_have_value("http://zoom.us/j/1")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(box.locator("form")).to_have_count(1)  # swapped into its place, not nested
    expect(page).to_have_url(re.compile(rf"/admin/visits/{visit_id}$"))

    field.fill("https://meet.google.com/abc-defg-hij")
    box.locator("button[type=submit]").click()
    expect(page.locator("#flashes")).to_contain_text("Meeting link saved.")
    link = page.locator(f'#item-{item_id} a[href="https://meet.google.com/abc-defg-hij"]')
    expect(link).to_be_visible()
    expect(page.locator(f"#meet-link-{item_id} p.error")).to_have_count(0)
