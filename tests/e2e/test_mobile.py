"""Issue #16, mobile first, in Chromium at 390 × 844: the booking, cancel and wallet pages
(and the other main patient pages) are no wider than the screen under a phone's emulation;
the first patient page and the next stay under the page-weight goals (30 KB / 10 KB).
axe-core's checks of the patient, doctor and admin pages are the every-page walk's
(test_axe_every_page.py, stricter: no violation of any impact, on every page)."""

import os
from datetime import date

import pytest
from playwright.sync_api import expect

import portal.booking.tasks  # noqa: F401  (until create_app imports it)
import portal.refunds.tasks  # noqa: F401
from portal.accounts.models import Dependent
from portal.booking import visits
from portal.extensions import db
from tests.booking.factories import credit_wallet, quoted_checkout
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.refunds.helpers import quoted_cancel
from tests.web.booking.helpers import build_catalog, online_service, slot, weekday_ahead

pytestmark = pytest.mark.e2e

AXE = os.path.join(os.path.dirname(__file__), "vendor", "axe.min.js")
PHONE = {"width": 390, "height": 844}
SERIOUS = ("serious", "critical")


@pytest.fixture(autouse=True)
def _ledger_stays_sound(ledger_stays_sound):
    """Money moves in these tests: the ledger must balance afterwards."""


@pytest.fixture
def phone(browser, app, live_server):
    """A phone-sized page. CSP is bypassed only so that axe-core can be injected (the
    portal's CSP allows no inline script); everything else is as a patient sees it."""
    app.config["WTF_CSRF_ENABLED"] = True
    context = browser.new_context(
        base_url=live_server,
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-IN",
        timezone_id="Asia/Kolkata",
        bypass_csp=True,
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    app.config["WTF_CSRF_ENABLED"] = False
    assert not errors, f"JavaScript errors in the page: {errors}"


@pytest.fixture
def history(app, make_user):
    """A patient with a paid two-item visit (one item cancelled to the wallet), an open
    visit, a paid visit for their child, wallet movements; a doctor and an admin."""
    patient = make_user("patient", name="Meera Iyer")
    admin = make_user("admin", name="Ops Admin")
    day = weekday_ahead(5)
    with app.app_context():
        cat = build_catalog(make_user)
        credit_wallet(patient.id, 200_000)
        me = db.session.get(type(patient), patient.id)
        first = visits.add_item(
            me,
            patient_id=me.id,
            service_id=cat.consult,
            provider_ids=[cat.doc1],
            clinic_id=cat.clinic,
            start_at=slot(day, 10),
        )
        second = visits.add_item(
            me,
            patient_id=me.id,
            service_id=cat.lab,
            provider_ids=[cat.lab_provider],
            clinic_id=cat.clinic,
            start_at=slot(day, 12),
            visit_id=first.master_id,
        )
        paid_id = first.master_id
        visit = db.session.get(type(first.visit), paid_id)
        wallet = sum(i.total for i in visit.items)
        quoted_checkout(me, paid_id, wallet, callback_url="http://portal.test/cb")
        quoted_cancel(me, paid_id, [second.id], prefer_wallet=True, reason="Done elsewhere")
        open_item = visits.add_item(
            me,
            patient_id=me.id,
            service_id=cat.follow,
            provider_ids=[cat.doc2],
            clinic_id=cat.clinic,
            start_at=slot(day, 15),
        )
        open_id = open_item.master_id
        # A family member's paid visit: the home's lists say whom each visit is for, a
        # long name included, in the row's card at phone width.
        child = Dependent(
            guardian_id=me.id,
            name="Aadhya Venkataraman Subramaniam",
            relationship_="child",
            date_of_birth=date(2018, 5, 1),
        )
        db.session.add(child)
        db.session.commit()
        family = visits.add_item(
            me,
            patient_id=me.id,
            service_id=cat.consult,
            provider_ids=[cat.doc2],
            clinic_id=cat.clinic,
            start_at=slot(day, 11),
            dependent_id=child.id,
        )
        family_total = db.session.get(type(family.visit), family.master_id).subtotal
        quoted_checkout(me, family.master_id, family_total, callback_url="http://portal.test/cb")
        db.session.remove()
    return {
        "patient": patient,
        "admin": admin,
        "doctor": cat.provider_user,
        "paid": paid_id,
        "open": open_id,
        "cat": cat,
        "day": day,
    }


def _width_fits(page, path):
    page.goto(path)
    page.wait_for_load_state("networkidle")
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PHONE["width"], f"{path} is {width} px wide at {PHONE['width']} px"


def _axe(page, path):
    page.goto(path)
    page.wait_for_load_state("networkidle")
    page.add_script_tag(path=AXE)
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]
    assert not bad, f"{path}: {bad}"


def _patient_pages(h):
    cat, day = h["cat"], h["day"]
    book = (
        f"/me/book?provider={cat.doc1}&service={cat.consult}&clinic={cat.clinic}"
        f"&start={slot(day, 16).isoformat()}"
    )
    return [
        "/me/",
        "/find",
        f"/find/times?provider={cat.doc1}&service={cat.consult}&clinic={cat.clinic}"
        f"&date={day.isoformat()}",
        book,
        f"/me/visits/{h['open']}",
        "/me/visits",
        f"/me/visits/{h['paid']}",
        f"/me/visits/{h['paid']}/cancel",
        f"/me/visits/{h['paid']}/refunds",
        f"/me/visits/{h['paid']}/receipt",
        "/me/wallet",
        "/notifications/",
    ]


def test_patient_pages_fit_a_phone(phone, history):
    """Under a phone's emulation (touch, 2× pixels), not only its width. axe-core checks
    these pages, and every other, in the every-page walk (test_axe_every_page.py: no
    violation of any impact, at 390 px and 1280 px)."""
    sign_in(phone, history["patient"].email, PASSWORD)
    for path in _patient_pages(history):
        _width_fits(phone, path)


def test_the_homes_rows_say_whom_each_visit_is_for_on_a_phone(phone, history):
    """The home's cards (one per visit under 40rem) carry the "For" line: the child's long
    name wraps inside the card, the holder's own visits read "You"."""
    sign_in(phone, history["patient"].email, PASSWORD)
    _width_fits(phone, "/me/")
    whom = phone.locator('td[data-label="For"]')
    assert sorted(whom.all_inner_texts()) == ["Aadhya Venkataraman Subramaniam", "You", "You"]
    for cell in whom.all():
        box = cell.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box


@pytest.fixture
def online_booking(app, history):
    """A paid video consultation with the doctor, its meeting link still to be set."""
    cat = history["cat"]
    service_id = online_service(app, cat)
    with app.app_context():
        me = db.session.get(type(history["patient"]), history["patient"].id)
        item = visits.add_item(
            me,
            patient_id=me.id,
            service_id=service_id,
            provider_ids=[cat.doc1],
            clinic_id=cat.clinic,
            start_at=slot(history["day"], 14),
        )
        total = db.session.get(type(item.visit), item.master_id).subtotal
        quoted_checkout(me, item.master_id, total, callback_url="http://portal.test/cb")
        booking_id = item.id
        db.session.remove()
    return booking_id


def test_the_doctors_meeting_link_field_takes_the_cards_width_on_a_phone(
    phone, history, online_booking
):
    """Review finding: at 390 px the schedule's table scrolled sideways and the meeting
    link's field, in its last cell, was 73 px wide (it showed "https:/"). The schedule's
    rows are cards on a phone, their actions as wide as the card."""
    sign_in(phone, history["doctor"].email, PASSWORD)
    _width_fits(phone, "/provider/schedule")
    row = phone.locator(f"#booking-{online_booking}").bounding_box()
    field = phone.locator(f"#meet-{online_booking}").bounding_box()
    assert row["x"] >= 0 and row["x"] + row["width"] <= PHONE["width"], row
    assert field["width"] >= 0.8 * row["width"], (field, row)
    phone.fill(f"#meet-{online_booking}", "https://meet.google.com/abc-defg-hij")
    phone.click(f"#booking-{online_booking} button:has-text('Save link')")
    expect(phone.locator(f"#booking-{online_booking}")).to_contain_text(
        "https://meet.google.com/abc-defg-hij"
    )
    _width_fits(phone, "/provider/schedule")


def test_the_doctor_edits_a_windows_hours_on_a_phone(phone, history):
    """A weekly window's Edit at 390 px: its row becomes a form no wider than the screen
    (the fields, Save and Cancel inside it, 44 px targets); Save changes the hours in place
    with a flash."""
    sign_in(phone, history["doctor"].email, PASSWORD)
    _width_fits(phone, "/provider/availability")
    row = phone.locator("#availability-windows tbody tr[id^=window-]").first
    row_id = row.get_attribute("id")
    row.locator("a:has-text('Edit')").click()
    edit = phone.locator(f"#{row_id}.editing")
    expect(edit).to_be_visible()
    width = phone.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PHONE["width"], width
    for part in ("input[name=edit-start_time]", "input[name=edit-end_time]", "button", "a"):
        box = edit.locator(part).first.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (part, box)
        assert box["height"] >= 44, (part, box)
    edit.locator("input[name=edit-end_time]").fill("16:00")
    edit.locator("button:has-text('Save')").click()
    expect(phone.locator(f"#{row_id}")).to_contain_text("16:00")
    expect(phone.locator(f"#{row_id}.editing")).to_have_count(0)
    expect(phone.locator("#flashes")).to_contain_text("Hours changed.")
    _width_fits(phone, "/provider/availability")
    # Without JavaScript, Edit is a page of its own: as wide as the screen, no violation.
    edit_page = f"/provider/availability/windows/{row_id.removeprefix('window-')}/edit"
    _width_fits(phone, edit_page)
    _axe(phone, edit_page)


def test_the_menu_opens_without_javascript_and_targets_are_44px(phone, history):
    sign_in(phone, history["patient"].email, PASSWORD)
    phone.goto("/me/wallet")
    nav = phone.locator("#main-nav")
    assert not nav.is_visible()
    top = phone.locator("h1").bounding_box()["y"]
    assert top < 200, f"the first heading starts {top} px down"
    phone.click("label.menu-button")
    assert nav.is_visible()
    links = nav.locator("a, button").all()
    assert links
    for link in links:
        box = link.bounding_box()
        assert box["height"] >= 44, (link.inner_text(), box)


def _transferred(page, action):
    """Bytes on the wire (headers and compressed bodies) while ``action`` runs."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    total = {"bytes": 0, "requests": 0}

    def done(event):
        total["bytes"] += int(event.get("encodedDataLength", 0))
        total["requests"] += 1

    cdp.on("Network.loadingFinished", done)
    action()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)
    cdp.detach()
    return total


def test_page_weight_first_and_next_patient_page(browser, app, live_server, history):
    """The first patient page with an empty cache under 30 KB, the next under 10 KB."""
    context = browser.new_context(base_url=live_server, viewport=PHONE)
    page = context.new_page()
    sign_in(page, history["patient"].email, PASSWORD)
    state = context.storage_state()
    context.close()
    context = browser.new_context(base_url=live_server, viewport=PHONE, storage_state=state)
    page = context.new_page()
    first = _transferred(page, lambda: page.goto("/me/"))
    page.click("label.menu-button")
    following = _transferred(page, lambda: page.click("#main-nav a[href='/me/wallet']"))
    page.wait_for_url("**/me/wallet")  # htmx pushes the address after the swap
    context.close()
    print(f"\nfirst patient page: {first}; the next: {following}")
    assert first["bytes"] < 30_000, first
    assert following["bytes"] < 10_000, following


def test_standalone_links_are_44px_tall_on_a_phone(phone, history):
    """Review finding: links on a line of their own were 19 px tall at 390 px (the CSS's
    ``min-height: 44px`` does nothing on an inline anchor); a link inside a sentence stays
    part of its line."""
    sign_in(phone, history["patient"].email, PASSWORD)
    cat, day, paid = history["cat"], history["day"], history["paid"]
    times = (
        f"/find/times?provider={cat.doc1}&service={cat.consult}&clinic={cat.clinic}"
        f"&date={day.isoformat()}"
    )
    links = [
        ("/me/", "main a:text-is('All my visits')"),
        (f"/me/visits/{paid}", "main a:text-is('Refunds for this visit')"),
        (f"/me/visits/{paid}/receipt", "main a:text-is('Back to the visit')"),
        (times, "main a:text-is('Back to the search')"),
        ("/me/account", "main a:text-is('Change your password')"),
        ("/find", "main a.more-times >> nth=0"),
    ]
    for path, selector in links:
        phone.goto(path)
        phone.wait_for_load_state("networkidle")
        box = phone.locator(selector).bounding_box()
        assert box and box["height"] >= 44, (path, selector, box)
    # A link inside a sentence stays part of its line ("New here? Create a patient
    # account." on the sign-in page).
    phone.context.clear_cookies()
    phone.goto("/auth/login")
    inline = phone.locator("main a:text-is('Create a patient account')")
    assert inline.evaluate("a => getComputedStyle(a).display") == "inline"


def test_no_card_cell_runs_out_of_its_card_on_a_phone(app, phone, history):
    """A card's cell is a flex row (its column's name, then its value): a long word in the
    value (the receipt's "GSTIN 29ABCDE1234F1Z5") must wrap, not stick out of the card (a
    review saw it 5 px past the edge: the cells' ``overflow-wrap: break-word`` does not let
    a flex item shrink below its longest word). And the column's name keeps its width: a
    doctor's-week review saw the held row's "Status" broken as "Statu / s" beside its long
    badge ("Awaiting payment — held until 16:50"): the name shrank with the value and
    ``anywhere`` broke it."""
    sign_in(phone, history["patient"].email, PASSWORD)
    for path in _patient_pages(history):
        _cards_fit(phone, path)
    cat = history["cat"]
    with app.app_context():  # a time the doctor's schedule greys while the patient pays
        me = db.session.get(type(history["patient"]), history["patient"].id)
        visits.add_item(
            me,
            patient_id=me.id,
            service_id=cat.consult,
            provider_ids=[cat.doc1],
            clinic_id=cat.clinic,
            start_at=slot(history["day"], 14),
        )
        db.session.remove()
    phone.context.clear_cookies()
    sign_in(phone, history["doctor"].email, PASSWORD)
    _cards_fit(phone, "/provider/schedule")
    assert phone.locator("tr.held").count() == 1


def _cards_fit(page, path):
    page.goto(path)
    page.wait_for_load_state("networkidle")
    over = page.evaluate(
        """[...document.querySelectorAll('table.cards td')]
             .filter(td => td.scrollWidth > td.clientWidth + 1)
             .map(td => td.dataset.label + ': ' + td.innerText.slice(0, 40))"""
    )
    assert not over, f"{path}: {over}"
    # Each cell's name (its ::before) as wide as its text on one line.
    broken = page.evaluate(
        """() => {
          const ctx = document.createElement('canvas').getContext('2d');
          return [...document.querySelectorAll('table.cards td[data-label]')].filter(td => {
            const name = getComputedStyle(td, '::before');
            if (name.content === 'none' || name.display === 'none') return false;
            ctx.font = `${name.fontWeight} ${name.fontSize} ${name.fontFamily}`;
            return parseFloat(name.width) + 0.5 < ctx.measureText(td.dataset.label).width;
          }).map(td => td.dataset.label + ' (' + getComputedStyle(td, '::before').width + ')');
        }"""
    )
    assert not broken, f"{path}: column names broken: {broken}"


def test_a_receipt_cells_parts_stay_together_on_a_phone(phone, history):
    """A receipt cell of two parts (an amount and its note: the platform fee, the GST rate;
    a name and its GSTIN) is one block at the right of its label. A card's cell is a flex
    row, and the parts as flex items of their own sat apart across the card: "₹25.0 / 0"
    in the middle, "platform fee ₹25.00" at the edge."""
    sign_in(phone, history["patient"].email, PASSWORD)
    phone.goto(f"/me/visits/{history['paid']}/receipt")
    apart = phone.evaluate(
        """[...document.querySelectorAll('.receipt table.cards tbody td')]
             .filter(td => [...td.childNodes]
               .filter(n => n.nodeType === 1 || n.textContent.trim()).length > 1)
             .map(td => td.dataset.label)"""
    )
    assert not apart
