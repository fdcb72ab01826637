"""The patient's account page (/me/account) in Chromium: "Download my data" and "Close my
account".

Review findings (rev4, browser walk):

* "Download my data" was boosted by the body's ``hx-boost``: htmx fetched the JSON and
  swapped its text into the page (pushing /me/account/data.json), no file was saved. It is
  the ``file_link`` macro now (not boosted, no ``download`` attribute).
* Its ``download`` attribute made the browser save whatever answered: past the hourly
  limit the 429 page was taken as a download, which Chromium drops (an error status), so
  "You have downloaded your data several times…" was never shown.
* On a phone a refused close (422, a full page) reloaded at the page's top, the reasons
  ~1,100 px below, out of sight: the form posts to ``#close-account`` now."""

import json
import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.plugin import rate_limited
from tests.threads import serve
from tests.web.booking.conftest import world  # noqa: F401
from tests.web.booking.helpers import credit_wallet, hold, slot

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("width", [1280, 390])
def test_download_my_data_saves_a_file_and_leaves_the_page(page, world, width):
    page.set_viewport_size({"width": width, "height": 844})
    sign_in(page, world.patient.email, PASSWORD)
    page.goto("/me/account")
    with page.expect_download(timeout=15_000) as info:
        page.click("#download-data a.button")
    download = info.value
    assert re.fullmatch(r"my-data-\d{4}-\d\d-\d\d\.json", download.suggested_filename)
    with open(download.path(), encoding="utf-8") as saved:
        assert json.load(saved)["profile"]["name"] == "Priya Sharma"
    expect(page.locator("h1")).to_have_text("My account")  # not the JSON swapped in
    assert page.url.endswith("/me/account")


@pytest.mark.parametrize("js", [True, False])
def test_past_the_download_limit_the_page_says_so(app, browser, world, js):
    with rate_limited(app, DATA_EXPORT_RATE_LIMIT="1 per hour") as twin:
        served = serve(twin)
        context = browser.new_context(base_url=served.url, java_script_enabled=js)
        try:
            context.set_default_timeout(10_000)
            page = context.new_page()
            sign_in(page, world.patient.email, PASSWORD)
            page.goto("/me/account")
            with page.expect_download() as first:
                page.click("#download-data a.button")
            assert first.value.suggested_filename.startswith("my-data-")
            saved = []
            page.on("download", lambda d: saved.append(d.suggested_filename))
            page.click("#download-data a.button")
            expect(page.locator("[role=alert]").first).to_contain_text(
                "downloaded your data several times"
            )
            assert not saved, saved
        finally:
            context.close()
            served.stop()


def test_a_refused_close_shows_the_reasons_in_view_on_a_phone(app, page, world):
    page.set_viewport_size({"width": 390, "height": 844})
    hold(app, world, start=slot(world.day, 10))
    credit_wallet(app, world.patient.id, 12_345)
    sign_in(page, world.patient.email, PASSWORD)
    page.goto("/me/account")
    page.fill("input[name=current_password]", PASSWORD)
    page.check("input[name=confirm]")
    page.click("#close-account button[type=submit]")
    expect(page.locator("#close-refused")).to_be_visible()
    page.wait_for_load_state("load")
    expect(page.locator("#close-refused")).to_be_in_viewport()
