"""The admin's inline edit rows on a phone (390 px), in Chromium.

Review finding (rev4): at 390 px a list's table scrolls inside itself (the clinics table
is 402 px in 358 px) and the inline edit form, one cell spanning the table, took the
table's width: opened from the row's Edit (the table scrolled right to reach it), the
form's labels and Save were cut at the left; at scrollLeft 0 the Closes column was cut at
the right. The edit cell is as wide as the table's visible box now, whichever way the
table is scrolled."""

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.web.booking.conftest import world  # noqa: F401

pytestmark = pytest.mark.e2e

# Every control of the edit form whose box is not inside the table's visible box.
OUTSIDE = """form => {
  const table = form.closest('tr.editing').closest('table').getBoundingClientRect();
  return [...form.querySelectorAll('input:not([type=hidden]), select, textarea, button, a.button')]
    .map(e => [e.name || e.textContent.trim(), e.getBoundingClientRect()])
    .filter(([, r]) => r.left < table.left - 0.5 || r.right > table.right + 0.5)
    .map(([name, r]) => `${name}: ${Math.round(r.left)}–${Math.round(r.right)} outside `
                        + `${Math.round(table.left)}–${Math.round(table.right)}`);
}"""


@pytest.mark.parametrize("scrolled", [False, True])
def test_the_clinic_edit_form_fits_the_table_on_a_phone(page, world, scrolled):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, world.admin.email, PASSWORD)
    page.goto("/admin/clinics")
    row = page.locator(f"#clinic-{world.clinic}")
    if scrolled:
        row.locator("a:has-text('Edit')").click()  # scrolls the table right to reach it
    else:
        row.locator("td").first.click()
    expect(page.locator(f"#clinic-{world.clinic}.editing")).to_be_visible()
    form = page.locator(f"#clinic-{world.clinic} form")
    expect(form.locator("button[type=submit]")).to_be_visible()  # the form's controls are there
    assert form.evaluate(OUTSIDE) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_the_provider_edit_form_fits_the_table_on_a_phone(page, world):
    """The same edit row (``ui.edit_row``) on the providers list."""
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, world.admin.email, PASSWORD)
    page.goto("/admin/providers")
    page.locator(f"#provider-{world.doc1} a:has-text('Edit')").click()
    expect(page.locator(f"#provider-{world.doc1}.editing")).to_be_visible()
    form = page.locator(f"#provider-{world.doc1} form")
    expect(form.locator("button[type=submit]")).to_be_visible()  # the form's controls are there
    assert form.evaluate(OUTSIDE) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
