"""No Content Security Policy message after the boosted hold post on the book page.

Chromium logged three "Applying inline style violates … 'style-src 'self''" errors after
Hold. The cause: htmx settles a swap by copying each old element's ``class``, ``style``,
``width`` and ``height`` onto the new element with the same id (``attributesToSettle``),
and the book page's ``#flashes``, ``#main-nav`` and the like are on the visit page too.
Once anything outside the portal's code had given one of them an inline style (an
extension, DevTools, a user style: the portal's pages and scripts set none), htmx wrote it
back with ``setAttribute("style", …)``, which the CSP (``style-src 'self'``, no inline
styles) refuses: one message per element. The site's htmx config settles no ``style``
(``base.html``); htmx's own indicator ``<style>`` is off too (``includeIndicatorStyles``)."""

import re

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.web.booking.helpers import book_url, build_catalog, slot, weekday_ahead

pytestmark = pytest.mark.e2e

# Elements with an id on the book page and on the visit page the hold leads to.
ON_BOTH = ("flashes", "main-nav", "htmx-error-messages")
LISTEN = """window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.sample || ''));
});"""


def _to_the_book_page(app, page, make_user):
    patient = make_user("patient", name="Meera Iyer")
    with app.app_context():
        world = build_catalog(make_user)
    world.day = weekday_ahead()
    page.add_init_script(LISTEN)
    sign_in(page, patient.email, PASSWORD)
    page.goto(book_url(world, start=slot(world.day, 10)))
    return world


def _hold(page):
    page.click("text=Hold this slot")  # boosted: htmx posts and swaps the visit page in
    page.wait_for_url(re.compile(r"/me/visits/\d+$"))
    page.wait_for_load_state("networkidle")
    page.wait_for_selector("#flashes .flash-success")


def test_the_boosted_hold_logs_no_csp_error(app, page, make_user):
    """A CSP message in the console fails the test (the ``page`` fixture, tests/e2e/conftest.py)."""
    _to_the_book_page(app, page, make_user)
    _hold(page)
    assert page.evaluate("window.__cspViolations") == []
    # htmx adds no <style> of its own (its indicator styles are off).
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False
    assert page.locator("style").count() == 0


def test_an_inline_style_from_outside_is_not_written_back_by_the_swap(app, page, make_user):
    """What Chromium showed: elements on both pages carrying an inline style (set through
    the CSSOM, as an extension or DevTools does, which the CSP allows) before Hold."""
    _to_the_book_page(app, page, make_user)
    page.evaluate(
        "ids => ids.forEach(id => { document.getElementById(id).style.outline = '1px solid'; })",
        list(ON_BOTH),
    )
    _hold(page)
    assert page.evaluate("window.__cspViolations") == []
    assert "style" not in page.evaluate("htmx.config.attributesToSettle")
