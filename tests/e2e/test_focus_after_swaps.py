"""Keyboard focus after htmx swaps (static/js/portal.js, its focus part), driven from the keyboard.

A known gap: after a boosted navigation or a partial swap that replaced the focused button,
focus fell back to <body>, so a keyboard user started again from the top and a screen
reader announced nothing. Polls and "load" sub-requests must never move focus."""

import re

import pytest
from playwright.sync_api import expect

from portal.exports.models import Export
from portal.extensions import db
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.web.booking.conftest import world  # noqa: F401
from tests.web.booking.helpers import book_url, hold, slot
from tests.web.booking.test_patient_pages import _coupon

pytestmark = pytest.mark.e2e

# What has focus: its tag and the start of its text.
ACTIVE = """() => {
  const e = document.activeElement;
  return {tag: e.tagName, text: (e.textContent || '').trim().slice(0, 60)};
}"""

# Counts finished swaps, so a test waits for a poll's swap without timing it.
COUNT_SWAPS = (
    "window.swaps = 0; document.addEventListener('htmx:afterSettle', () => window.swaps++)"
)


def active(page):
    return page.evaluate(ACTIVE)


def tab_to(page, selector, limit=150):
    """Press Tab until the element matching ``selector`` has focus, as a keyboard user would."""
    target = page.locator(selector).first
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("e => e === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {selector}")


def open_menu_to(page, menu_id, href):
    """Tab to one of the admin's folded menus, open it with Enter, and Tab to its link."""
    tab_to(page, f"#{menu_id} > summary")
    page.keyboard.press("Enter")
    tab_to(page, f"#{menu_id} a[href$='{href}']", limit=10)


def test_a_boosted_navigation_focuses_the_new_pages_heading(page, world):
    sign_in(page, world.admin.email, PASSWORD)
    page.goto("/admin/")
    open_menu_to(page, "nav-setup", "/admin/coupons")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/admin/coupons$"))
    expect(page.locator("main h1")).to_be_focused()
    assert page.locator("main h1").get_attribute("tabindex") == "-1"
    # The keyboard goes on from the heading, not from the top of the page.
    page.keyboard.press("Tab")
    assert page.evaluate("document.querySelector('main').contains(document.activeElement)")


def test_going_back_focuses_the_earlier_pages_heading(page, world):
    """Back after a boosted navigation: htmx puts the earlier page back, a page change too."""
    sign_in(page, world.admin.email, PASSWORD)
    page.goto("/admin/clinics")
    open_menu_to(page, "nav-setup", "/admin/coupons")
    page.keyboard.press("Enter")
    expect(page.locator("main h1")).to_have_text("Coupons")
    page.go_back()
    expect(page.locator("main h1")).to_have_text("Clinics")
    expect(page.locator("main h1")).to_be_focused()


def test_a_boosted_link_with_a_fragment_focuses_its_target(page, world):
    """The browser's own behaviour for #fragment: the named element, not the heading."""
    sign_in(page, world.admin.email, PASSWORD)
    page.goto("/admin/clinics")
    # A link to a row of the list (the app's own pages link by path; the rule is general).
    page.evaluate(
        """id => { const a = document.createElement('a'); a.id = 'to-row';
        a.href = '/admin/clinics#' + id; a.textContent = 'to the row';
        document.querySelector('main').prepend(a); htmx.process(a); }""",
        f"clinic-{world.clinic}",
    )
    page.locator("#to-row").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#to-row")).to_have_count(0)  # the new page is in
    expect(page.locator(f"#clinic-{world.clinic}")).to_be_focused()


def test_removing_the_coupon_keeps_focus_in_the_price_summary(app, page, world):
    _coupon(app)
    visit_id, _ = hold(app, world)
    sign_in(page, world.patient.email, PASSWORD)
    page.goto(f"/me/visits/{visit_id}")
    tab_to(page, "input[name=code]")
    page.keyboard.type("SAVE10")
    page.keyboard.press("Enter")
    remove = page.locator("#summary button:has-text('Remove coupon')")
    expect(remove).to_be_visible()
    tab_to(page, "#summary button:has-text('Remove coupon')")
    page.keyboard.press("Enter")
    expect(remove).to_have_count(0)
    # The button is gone with the swap: focus is on the summary's heading, not on <body>.
    expect(page.locator("#summary h2").first).to_be_focused()
    assert active(page)["text"] == "Total"


def test_a_refused_coupon_puts_focus_on_the_field_with_its_message(page, app, world):
    """422: the form comes back with its message; focus goes to the invalid field."""
    visit_id, _ = hold(app, world)
    sign_in(page, world.patient.email, PASSWORD)
    page.goto(f"/me/visits/{visit_id}")
    tab_to(page, "input[name=code]")
    page.keyboard.type("NOSUCH")
    tab_to(page, "#summary button:has-text('Apply coupon')")
    with page.expect_response(lambda r: r.url.endswith("/coupon")) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 422
    code = page.locator("#summary input[name=code]")
    expect(code).to_be_focused()
    expect(code).to_have_attribute("aria-invalid", "true")


def test_saving_an_inline_admin_row_keeps_focus_on_the_row(page, world):
    sign_in(page, world.admin.email, PASSWORD)
    page.goto("/admin/clinics")
    row = f"#clinic-{world.clinic}"
    tab_to(page, f"{row} a:has-text('Edit')")
    page.keyboard.press("Enter")
    expect(page.locator(f"{row}.editing")).to_be_visible()
    tab_to(page, f"{row} button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator(f"{row}.editing")).to_have_count(0)
    # The Save button went with the edit form: focus is on the row that came back ...
    expect(page.locator(row)).to_be_focused()
    # ... and the next Tab reaches that row's Edit link, not the top of the page.
    page.keyboard.press("Tab")
    expect(page.locator(f"{row} a:has-text('Edit')")).to_be_focused()


def test_the_transactions_summary_loading_leaves_focus_on_the_heading(page, world):
    """The console's summary is a "load" sub-request after the page: it must not take the
    focus the navigation put on the heading."""
    sign_in(page, world.admin.email, PASSWORD)
    page.goto("/admin/transactions")  # loaded whole: nothing has focus yet
    expect(page.locator("#summary [data-sum]").first).to_be_attached()  # the summary came
    assert active(page)["tag"] == "BODY"  # not pulled into the summary
    page.evaluate("document.querySelector('main h1').dataset.old = 'yes'")
    open_menu_to(page, "nav-money", "/admin/transactions")
    page.keyboard.press("Enter")  # the same page again, boosted
    expect(page.locator("main h1[data-old]")).to_have_count(0)  # the new page is in ...
    expect(page.locator("#summary [data-sum]").first).to_be_attached()  # ... and its summary
    expect(page.locator("main h1")).to_be_focused()


def test_a_poll_never_moves_focus(app, page, world):
    """A queued export's status is polled every second and swapped whole. Focus stays where
    the person left it: on <body> while reading, on a link after tabbing to it."""
    with app.app_context():
        export = Export(
            name="transactions", title="Movements", download_name="movements.csv",
            requested_by_id=world.admin.id, rows_total=10,
        )  # fmt: skip
        db.session.add(export)
        db.session.commit()
        export_id = export.id
    sign_in(page, world.admin.email, PASSWORD)
    page.goto(f"/admin/exports/{export_id}")
    page.evaluate(COUNT_SWAPS)
    page.wait_for_function("() => window.swaps >= 1")
    assert active(page)["tag"] == "BODY"  # not pulled into the polled status
    tab_to(page, "main a:has-text('All my exports')")
    page.evaluate("window.swaps = 0")
    page.wait_for_function("() => window.swaps >= 1")
    expect(page.locator("main a:has-text('All my exports')")).to_be_focused()


def test_the_bell_refreshing_keeps_focus_on_its_link(page, world):
    """The bell is swapped whole by its poll and by "notifications-changed" (sent by the
    server when a notice is read): a keyboard user on its link stays there."""
    sign_in(page, world.patient.email, PASSWORD)
    page.goto("/me/")
    tab_to(page, "#notification-bell a")
    page.evaluate(COUNT_SWAPS)
    page.evaluate("htmx.trigger(document.body, 'notifications-changed')")  # as HX-Trigger does
    page.wait_for_function("() => window.swaps >= 1")
    expect(page.locator("#notification-bell a")).to_be_focused()


# --- review findings (UX): the find page's search, the doctor's weekly hours, the book page


def _mark_the_page(page):
    """A window marker and the heading's: both are gone after a full page load or a
    boosted navigation (which replaces the body), and kept by a swap of the results."""
    page.evaluate("window.samePage = true; document.querySelector('main h1').dataset.old = 'yes'")


def _still_the_same_page(page):
    assert page.evaluate("window.samePage === true"), "the page was loaded again"
    expect(page.locator("main h1[data-old]")).to_have_count(1)


@pytest.mark.parametrize("field", ["#find-q", "#find-date"])
def test_enter_in_the_find_form_swaps_the_results_and_keeps_the_focus(page, world, field):
    """Review finding: Enter in the search box or the date field (or the Search button)
    loaded the whole page again (the form sent on change and input, not on submit), and
    focus fell to <body>, 12+ Tabs back from the field."""
    page.goto("/find")
    _mark_the_page(page)
    tab_to(page, field)
    if field == "#find-q":
        page.keyboard.type("Asha")
    with page.expect_response(lambda r: "/find?" in r.url and r.request.method == "GET"):
        page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")
    _still_the_same_page(page)
    expect(page.locator(field)).to_be_focused()
    if field == "#find-q":
        expect(page.locator("#results")).to_contain_text("Dr Asha Rao")
        expect(page.locator("#results")).not_to_contain_text("Dr Vikram Shah")
        expect(page).to_have_url(re.compile(r"/find\?.*q=Asha"))


def test_the_find_forms_search_button_swaps_the_results_and_keeps_the_focus(page, world):
    page.goto("/find")
    _mark_the_page(page)
    page.fill("#find-q", "Vikram")
    page.wait_for_load_state("networkidle")
    tab_to(page, "form[role=search] button[type=submit]")
    with page.expect_response(lambda r: "/find?" in r.url and r.request.method == "GET"):
        page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")
    _still_the_same_page(page)
    expect(page.locator("form[role=search] button[type=submit]")).to_be_focused()
    expect(page.locator("#results")).to_contain_text("Dr Vikram Shah")


def test_editing_a_windows_hours_focuses_its_first_field(page, world):
    """Review finding: after a weekly window's Edit, focus went to the "Weekly hours"
    heading, 21 Tabs from the last row's From field. The row's form takes it."""
    sign_in(page, world.provider_user.email, PASSWORD)
    page.goto("/provider/availability")
    last = page.locator("#availability-windows tbody tr").last
    row = f"#{last.get_attribute('id')}"
    tab_to(page, f"{row} a:has-text('Edit')")
    page.keyboard.press("Enter")
    expect(page.locator(f"{row}.editing")).to_be_visible()
    expect(page.locator("#edit-start_time")).to_be_focused()
    # Refused (the end before the start): the field with the message has focus, not the
    # first field again.
    page.fill("#edit-end_time", "08:00")
    tab_to(page, f"{row} button:has-text('Save')")
    with page.expect_response(lambda r: r.url.endswith("/edit")) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 422
    expect(page.locator('#edit-end_time[aria-invalid="true"]')).to_be_focused()


def _without_mondays_window(app, world):
    """The doctor works Mon–Fri 09–18, the clinic's whole week: Monday's window removed
    leaves room to add one."""
    import sqlalchemy as sa

    from portal.catalog.models import Availability

    with app.app_context():
        db.session.execute(
            sa.delete(Availability).where(
                Availability.provider_id == world.doc1, Availability.weekday == 0
            )
        )
        db.session.commit()


def _add(page, button, path, status=200, said=None):
    """Tab to ``button`` and press Enter; the answer's status, and ``said`` in the page's own
    status region (the live region kept, so it is announced: docs/web.md)."""
    tab_to(page, button)
    with page.expect_response(lambda r: r.url.endswith(path)) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == status
    if said:
        expect(page.locator("#flashes [role=status]")).to_have_text(said)
        assert page.evaluate("document.getElementById('flashes') === window.statusRegion")


def test_adding_hours_or_leave_focuses_the_add_forms_first_field(app, page, world):
    """Review finding: after Add of a weekly window (or of leave) the section was swapped,
    the button with it, and focus went to the section's heading ("Weekly hours"), a dozen
    Tabs from the form. Focus goes back to the add form's first field, emptied, to add
    another; the new row is listed and "Hours added." (or "Leave added.") is said in the
    page's status region, the live region kept so it is announced (docs/web.md)."""
    _without_mondays_window(app, world)
    sign_in(page, world.provider_user.email, PASSWORD)
    page.goto("/provider/availability")
    page.evaluate("window.statusRegion = document.getElementById('flashes')")
    rows = page.locator("#availability-windows tbody tr")
    before = rows.count()
    page.select_option("#weekday", "0")
    page.fill("#start_time", "09:00")
    page.fill("#end_time", "13:00")
    _add(
        page,
        "#availability-windows button:has-text('Add')",
        "/availability/windows",
        said="Hours added.",
    )
    expect(rows).to_have_count(before + 1)
    expect(page.locator("#clinic_id")).to_be_focused()
    expect(page.locator("#start_time")).to_have_value("")
    page.fill("#starts_at", "2030-01-07T09:00")
    page.fill("#ends_at", "2030-01-08T18:00")
    _add(page, "#leave button:has-text('Add leave')", "/availability/leave", said="Leave added.")
    expect(page.locator("#leave tbody tr")).to_have_count(1)
    expect(page.locator("#starts_at")).to_be_focused()
    expect(page.locator("#starts_at")).to_have_value("")
    # Refused (ends before it starts): the field with the message has focus, as before.
    page.fill("#starts_at", "2030-02-07T09:00")
    page.fill("#ends_at", "2030-02-06T09:00")
    _add(page, "#leave button:has-text('Add leave')", "/availability/leave", status=422)
    expect(page.locator('#ends_at[aria-invalid="true"]')).to_be_focused()


def test_choosing_another_person_on_the_book_page_says_their_visit(app, page, world):
    """Review finding: "For Priya Sharma, this is added to the unpaid visit …" stayed
    after choosing a family member, whose hold then started a visit of its own. The
    choice asks the page again for that person; focus stays on the choice."""
    hold(app, world, start=slot(world.day, 9))  # Priya's own unpaid visit
    sign_in(page, world.patient.email, PASSWORD)
    page.goto(book_url(world))
    note = page.locator("#book-form").get_by_text("this is added to the unpaid visit")
    expect(note).to_contain_text("For Priya Sharma")
    _mark_the_page(page)
    page.locator("#person").focus()
    page.locator("#person").select_option(f"dependent:{world.child}")
    expect(note).to_have_count(0)
    _still_the_same_page(page)
    expect(page.locator("#person")).to_be_focused()
    expect(page.locator("#person")).to_have_value(f"dependent:{world.child}")
    page.locator("#person").select_option("self")
    expect(note).to_contain_text("For Priya Sharma")
