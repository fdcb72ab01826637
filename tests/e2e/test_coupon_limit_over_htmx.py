"""Past COUPON_RATE_LIMIT the visit page says so beside the code (docs/security.md "Coupon
codes are limited"), also when the code is sent over htmx, as the visit page's own coupon
form sends it: the 429 answer carries the form and is swapped, not replaced by portal.js's
generic words."""

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.plugin import rate_limited
from tests.threads import serve
from tests.web.booking.conftest import world  # noqa: F401
from tests.web.booking.helpers import hold
from tests.web.booking.test_patient_pages import _coupon

pytestmark = pytest.mark.e2e


def test_the_coupon_limit_is_said_beside_the_code_over_htmx(app, browser, world):
    _coupon(app)
    visit_id, _ = hold(app, world)
    with rate_limited(
        app, RATELIMIT_STORAGE_URI="memory://", COUPON_RATE_LIMIT="3 per hour"
    ) as twin:
        twin.config["WTF_CSRF_ENABLED"] = True
        served = serve(twin)
        context = browser.new_context(base_url=served.url, locale="en-IN")
        context.set_default_timeout(10_000)
        try:
            page = context.new_page()
            page.goto("/auth/login")
            page.fill("input[name=email]", world.patient.email)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state("networkidle")
            page.goto(f"/me/visits/{visit_id}")
            statuses = []
            for code in ("WRONG1", "WRONG2", "WRONG3", "SAVE10"):
                page.fill("#summary input[name=code]", code)
                with page.expect_response(lambda r: r.url.endswith("/coupon")) as answer:
                    page.click("#summary button:has-text('Apply coupon')")
                statuses.append(answer.value.status)
                page.wait_for_load_state("networkidle")
            assert statuses == [422, 422, 422, 429]
            expect(page.locator("#summary")).to_contain_text("Too many coupon codes tried")
            expect(page.locator("#flashes")).not_to_contain_text("Too many attempts")
        finally:
            context.close()
            served.stop()
