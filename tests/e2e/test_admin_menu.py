"""The admin's header on a laptop: sixteen links took three lines (207 px high at 1366 and
at 1024 px: review finding). The daily ones stay in view and the rest fold into three
menus (Money, Setup, Records) that open by click or keyboard and close on a click
elsewhere, another menu, or Escape; on a phone they open in place in the Menu list."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

MENUS = {
    "nav-money": [
        "/admin/payments",
        "/admin/refunds",
        "/admin/payouts",
        "/admin/transactions",
        "/admin/settlements",
        "/admin/reconciliation",
    ],
    "nav-setup": ["/admin/providers", "/admin/coupons", "/admin/users", "/admin/policy"],
    "nav-records": ["/admin/reports", "/admin/audit", "/admin/jobs"],
}


def _height(page):
    return page.evaluate("document.querySelector('header.topbar').getBoundingClientRect().height")


@pytest.mark.parametrize("width, lines", [(1366, 1), (1024, 2)])
def test_the_admin_header_is_one_or_two_lines(page, make_user, width, lines):
    admin = make_user("admin", email=f"menu{width}@example.com")
    page.set_viewport_size({"width": width, "height": 768})
    sign_in(page, admin.email, PASSWORD)
    page.goto("/admin/visits")
    assert _height(page) <= 8 + 52 * lines, _height(page)  # a line: a 44 px target and gaps


def test_every_folded_link_is_one_click_away_and_the_menus_close(page, make_user):
    admin = make_user("admin", email="menus@example.com")
    page.set_viewport_size({"width": 1366, "height": 768})
    sign_in(page, admin.email, PASSWORD)
    page.goto("/admin/visits")
    for menu_id, hrefs in MENUS.items():
        menu = page.locator(f"#{menu_id}")
        expect(menu.locator("a").first).to_be_hidden()
        menu.locator("summary").click()
        for href in hrefs:
            expect(menu.locator(f"a[href='{href}']")).to_be_visible()
        # The open menu lies over the page, not pushing it down.
        assert _height(page) <= 60
    # Only the last one opened is open: opening one closed the one before.
    assert page.locator("#main-nav details[open]").count() == 1
    page.locator("main h1").click()  # a click elsewhere closes it
    assert page.locator("#main-nav details[open]").count() == 0
    page.locator("#nav-money summary").click()
    page.locator("#nav-money a[href='/admin/transactions']").click()
    expect(page).to_have_url(re.compile(r"/admin/transactions"))
    expect(page.locator("#nav-money a").first).to_be_hidden()
    page.go_back()  # htmx's snapshot of the visits page was taken with the menu open
    expect(page).to_have_url(re.compile(r"/admin/visits"))
    expect(page.locator("main h1")).to_have_text("Appointments")
    assert page.locator("#main-nav details[open]").count() == 0


def test_a_keyboard_opens_a_menu_and_escape_closes_it(page, make_user):
    admin = make_user("admin", email="keys@example.com")
    page.set_viewport_size({"width": 1024, "height": 768})
    sign_in(page, admin.email, PASSWORD)
    page.goto("/admin/visits")
    page.locator("#nav-setup summary").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#nav-setup a[href='/admin/coupons']")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.locator("#nav-setup a").first).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#nav-setup a").first).to_be_hidden()
    expect(page.locator("#nav-setup summary")).to_be_focused()


def test_on_a_phone_the_menus_open_in_place(page, make_user):
    admin = make_user("admin", email="phone-menu@example.com")
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, admin.email, PASSWORD)
    page.goto("/admin/visits")
    page.locator(".menu-button").click()
    expect(page.locator("#main-nav a[href='/admin/visits']")).to_be_visible()
    page.locator("#nav-records summary").click()
    audit = page.locator("#nav-records a[href='/admin/audit']")
    expect(audit).to_be_visible()
    box, summary = audit.bounding_box(), page.locator("#nav-records summary").bounding_box()
    assert box["y"] > summary["y"] and box["height"] >= 44  # below it, a full touch target
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
