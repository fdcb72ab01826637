"""Requests on their way at once (static/js/portal.js, its requests-at-once part, docs/web.md): a poll's swap never
swallows the person's own request, and an answer whose target an earlier answer redrew
lands where that target is now. The transactions console's two orders of the same race are
in test_transactions_console.py."""

import re
import time

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.web.booking.conftest import world  # noqa: F401
from tests.web.booking.helpers import hold, slot
from tests.web.booking.test_patient_pages import _coupon

pytestmark = pytest.mark.e2e


def test_a_bell_refresh_does_not_swallow_the_persons_click_on_the_bell(page, world):
    """Review finding: the bell's refresh (its 30 s poll, or the event the server sends)
    answered while the notifications page was loading; its swap replaced the bell, and
    with it the link that sent the navigation, which was aborted: the person clicked
    "Notifications" and stayed where they were. The refresh is dropped instead."""
    sign_in(page, world.patient.email, PASSWORD)
    page.goto("/me/")
    expect(page.locator("#notification-bell-link")).to_be_visible()
    page.evaluate(
        "window.bell = 0; document.addEventListener('htmx:afterRequest', e => {"
        " if (e.detail.elt.id === 'notification-bell') window.bell++; });"
        "window.aborted = [];"
        "document.addEventListener('htmx:xhr:abort', e => window.aborted.push("
        "e.detail.elt.id || e.detail.elt.tagName))"
    )
    held = []
    page.route(re.compile(r"/notifications/?(\?.*)?$"), lambda route: held.append(route))
    page.click("#notification-bell-link")  # the person's click
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the navigation to the notifications page was never asked"
    # The bell's own refresh, asked and answered while the page loads.
    page.evaluate("htmx.trigger(document.body, 'notifications-changed')")
    for _ in range(100):  # (the CSP allows no wait_for_function)
        if page.evaluate("window.bell") >= 1:
            break
        page.wait_for_timeout(50)
    assert page.evaluate("window.bell") >= 1, "the bell's refresh was never answered"
    held[0].continue_()
    expect(page.locator("main h1")).to_contain_text("Notifications", timeout=5000)
    expect(page).to_have_url(re.compile(r"/notifications/?$"))
    assert page.evaluate("window.aborted") == []


def test_a_coupon_applied_while_an_item_is_removed_shows_in_the_summary(
    app, page, world, monkeypatch
):
    """Remove an item (it redraws the visit), then Apply coupon (it redraws the summary
    inside it) before the first answer is back. The removal's answer replaced the
    coupon's sender, and the coupon's answer, aborted, was lost: applied at the server,
    not shown. It now lands in the summary the removal drew."""
    _coupon(app)
    visit_id, _ = hold(app, world)
    hold(app, world, visit_id=visit_id, start=slot(world.day, 11))
    remove = app.view_functions["patient.remove_item"]
    apply = app.view_functions["patient.apply_coupon"]

    def slow_remove(*args, **kwargs):
        time.sleep(0.5)  # the removal answers first...
        return remove(*args, **kwargs)

    def slower_apply(*args, **kwargs):
        time.sleep(1.5)  # ...while the coupon asked after it is still on its way
        return apply(*args, **kwargs)

    monkeypatch.setitem(app.view_functions, "patient.remove_item", slow_remove)
    monkeypatch.setitem(app.view_functions, "patient.apply_coupon", slower_apply)
    sign_in(page, world.patient.email, PASSWORD)
    page.goto(f"/me/visits/{visit_id}")
    page.on("dialog", lambda dialog: dialog.accept())  # "Remove … from this visit?"
    page.fill("#summary input[name=code]", "SAVE10")
    page.locator("#visit-body button:has-text('Remove')").last.click()
    page.click("#summary button:has-text('Apply coupon')")
    expect(page.locator("#summary")).to_contain_text("SAVE10", timeout=5000)
    expect(page.locator("#summary button:has-text('Remove coupon')")).to_be_visible()
    expect(
        page.locator("#visit-body button:has-text('Remove')").filter(has_not_text="coupon")
    ).to_have_count(1)
    expect(page.locator(".flash-error")).to_have_count(0)
