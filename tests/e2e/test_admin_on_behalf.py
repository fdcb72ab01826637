"""The operations desk in Chromium: an admin creates a visit for a new child of an existing
parent through the slot picker, sends the payment link, the patient pays it on the
sandbox's link page, and the appointments list shows the visit confirmed."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

import portal.booking.tasks  # noqa: F401  (jobs + webhook handlers; until create_app imports it)
from portal.accounts.models import Dependent
from portal.booking.models import MasterBooking
from portal.extensions import db
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.web.booking.helpers import build_catalog, weekday_ahead

pytestmark = pytest.mark.e2e


@pytest.fixture
def desk_world(app, make_user):
    parent = make_user("patient", name="Priya Sharma", phone="+919812345678")
    admin = make_user("admin", name="Ops Admin")
    with app.app_context():
        catalog = build_catalog(make_user)
    catalog.parent, catalog.admin = parent, admin
    return catalog


def test_admin_books_for_a_new_child_sends_the_link_patient_pays_list_shows_confirmed(
    app,
    page,
    browser,
    live_server,
    sandbox,
    desk_world,  # noqa: F811
):
    w = desk_world
    sign_in(page, w.admin.email, PASSWORD)

    # Find the parent, then add the child on the spot.
    page.goto("/admin/visits/new?q=Priya")
    page.click(f"#patient-{w.parent.id} a")
    page.wait_for_url(re.compile(rf"/admin/visits/new/{w.parent.id}"))
    page.fill("#add-child input[name=name]", "Kiara")
    page.select_option("#add-child select[name=relationship]", value="child")
    page.click("#add-child button[type=submit]")
    page.wait_for_url(re.compile(r"person=dependent"))
    assert "Kiara added" in page.content()
    with app.app_context():
        child = db.session.scalar(db.select(Dependent).where(Dependent.name == "Kiara"))
        assert child.guardian_id == w.parent.id
    assert page.locator("select[name=person]").input_value() == f"dependent:{child.id}"

    # The slot picker: the service narrows the providers, the provider shows free times.
    # Each choice asks the page for the picker again (htmx); wait for that answer.
    def choose(name, value):
        if page.locator(f"select[name={name}]").input_value() == str(value):
            return  # chosen already (a list of one is preselected): no new answer comes
        with page.expect_response(lambda r: f"/admin/visits/new/{w.parent.id}?" in r.url):
            page.select_option(f"select[name={name}]", value=str(value))
        settled()

    def settled():
        # networkidle is no help here: reached once after the page loaded, it returns at
        # once; wait instead until htmx has no request in flight and has swapped the answer.
        # (A locator, not wait_for_function: the page's CSP forbids eval.)
        expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)

    choose("service", w.lab)
    providers = page.locator("select[name=providers]").inner_text()
    assert "City Lab" in providers and "Dr Asha Rao" not in providers
    choose("service", w.consult)
    providers = page.locator("select[name=providers]").inner_text()
    assert "City Lab" not in providers and "Dr Asha Rao" in providers
    choose("clinic", w.clinic)
    assert "Platform fee" in page.locator("#picker").inner_text()
    choose("providers", w.doc1)
    # A day far enough ahead that a payment link may live its full 24 hours: the free
    # times start today, and today's first may be too close for a link (before 09:00 IST).
    # (fill sends the change a date picker sends; one answer comes back.)
    day = weekday_ahead(3).isoformat()
    with page.expect_response(lambda r: f"/admin/visits/new/{w.parent.id}?" in r.url):
        page.fill("input[name=day]", day)
    settled()
    assert page.locator("input[name=day]").input_value() == day
    page.wait_for_selector("input[name=slot]")
    first = page.locator("input[name=slot]").first
    chosen = first.get_attribute("value")
    first.check()
    assert first.is_checked()
    page.click("text=Hold this slot")
    page.wait_for_url(re.compile(r"/admin/visits/\d+$"))
    visit_id = int(page.url.rstrip("/").split("/")[-1])
    with app.app_context():
        visit = db.session.get(MasterBooking, visit_id)
        assert visit.dependent_id == child.id and visit.channel == "DESK"
        assert visit.items[0].start_at.isoformat() == chosen
        number = visit.number

    # The payment link, sent to the parent.
    page.click("text=Create a payment link")
    page.wait_for_selector("#payment-link")
    link_url = page.locator("#payment-link").input_value()
    assert "/pl/" in link_url

    # The parent pays on the link page (no sign-in needed), in their own browser.
    patient_context = browser.new_context(locale="en-IN", timezone_id="Asia/Kolkata")
    try:
        patient_page = patient_context.new_page()
        # The sandbox writes links on the URL it was mounted with; it is served here.
        patient_page.goto(live_server + urlsplit(link_url).path)
        with patient_page.expect_navigation():  # the form's POST, then its redirect
            patient_page.click("button.pay")
        # Razorpay sends the browser back to the portal (the link's callback_url), whose
        # page confirms the visit from the signed return, before any webhook, and names
        # nothing of the patient but the visit's number.
        assert urlsplit(patient_page.url).path == "/me/links/paid"
        said = patient_page.locator("#link-paid").inner_text()
        assert f"Payment received, your visit {number} is confirmed." in said
        assert "Kiara" not in patient_page.content()
        with app.app_context():
            assert db.session.get(MasterBooking, visit_id).status == "CONFIRMED"
    finally:
        patient_context.close()
    sandbox.deliver_pending(force=True)  # the webhook after it changes nothing

    # The appointments list shows it confirmed and paid, found by the child's name.
    page.goto("/admin/visits?q=kiara")
    row = page.locator(f"tr#visit-{visit_id}")
    text = row.inner_text()
    assert number in text and "Kiara" in text and "Confirmed" in text
    assert row.locator("[data-payment]").get_attribute("data-payment") == "SUCCESSFUL"
    assert row.locator("[data-next]").get_attribute("data-next") == "COMPLETE"
    with app.app_context():
        assert db.session.get(MasterBooking, visit_id).status == "CONFIRMED"
