"""The patient's whole journey in Chromium: a patient with a dependent and wallet money
books three services with two providers for the dependent, applies a coupon and part of
the wallet, pays on the sandbox's checkout page and sees every appointment confirmed."""

import re
from datetime import date
from urllib.parse import urlencode

import pytest

import portal.booking.tasks  # noqa: F401  (jobs + webhook handlers; until create_app imports it)
from portal.accounts.models import Dependent
from portal.booking.models import Coupon, MasterBooking
from portal.extensions import db
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.web.booking.helpers import build_catalog, credit_wallet, slot, weekday_ahead

pytestmark = pytest.mark.e2e


@pytest.fixture
def family(app, make_user):
    patient = make_user("patient", name="Priya Sharma")
    with app.app_context():
        catalog = build_catalog(make_user)
        child = Dependent(
            guardian_id=patient.id,
            name="Aarav",
            relationship_="child",
            date_of_birth=date(2018, 5, 1),
        )
        db.session.add(child)
        db.session.add(Coupon(code="FAMILY10", kind="PERCENT", value=1000))
        db.session.commit()
        catalog.child = child.id
    credit_wallet(app, patient.id, 30_000)  # ₹300 in the wallet
    catalog.patient = patient
    return catalog


def _book(page, family, provider, service, start):
    """Open the slot link the find-a-doctor page gives, choose Aarav, hold it."""
    page.goto(
        "/me/book?"
        + urlencode(
            {
                "provider": provider,
                "service": service,
                "clinic": family.clinic,
                "start": start.isoformat(),
            }
        )
    )
    page.select_option("select[name=person]", value=f"dependent:{family.child}")
    page.click("text=Hold this slot")
    page.wait_for_url(re.compile(r"/me/visits/\d+$"))


def test_patient_books_three_services_for_a_child_and_pays(app, page, live_server, sandbox, family):
    day = weekday_ahead()
    sign_in(page, family.patient.email, PASSWORD)

    # Three services, two providers (Dr Rao twice, the lab once), all for Aarav.
    _book(page, family, family.doc1, family.consult, slot(day, 10))
    assert "10:00 IST" in page.content()
    page.click("text=Add another service")
    page.wait_for_url(re.compile(r"/find"))
    _book(page, family, family.doc1, family.follow, slot(day, 11))
    _book(page, family, family.lab_provider, family.lab, slot(day, 12))
    visit_url = page.url
    visit_id = int(visit_url.rstrip("/").split("/")[-1])
    assert page.locator("article[id^=item-]").count() == 3
    assert "For Aarav" in page.content()
    # ₹529.50 + ₹265.29 + ₹353 (each fee + 5% platform fee + 18% GST on the platform fee)
    assert "₹1,147.79" in page.locator("#summary").inner_text()

    # The coupon and part of the wallet, each swapping only the price summary (htmx).
    page.fill("input[name=code]", "family10")
    page.click("text=Apply coupon")
    page.wait_for_selector("text=Coupon FAMILY10")
    page.fill("input#wallet", "150")
    page.click("text=Apply wallet")
    page.wait_for_selector("text=From your wallet")
    assert page.url == visit_url  # no navigation: fragments were swapped in
    summary = page.locator("#summary").inner_text()
    assert "−₹150" in summary
    due = page.locator("#amount-due").inner_text()

    # Pay on the sandbox's hosted checkout page, then back to the confirmation.
    page.click("#pay")
    page.wait_for_url(re.compile(r"/sandbox/checkout/order_"))
    assert due in page.content()  # the order is for what was due after coupon and wallet
    page.click("button.pay")
    page.wait_for_url(re.compile(rf"/me/visits/{visit_id}/confirmation(\?payment=\w+)?$"))
    assert page.locator("h1").inner_text() == "Payment received"
    rows = page.locator("tr[id^=item-]")
    assert rows.count() == 3
    for i in range(3):
        assert "Confirmed" in rows.nth(i).inner_text()

    # The webhook arrives too (after the callback): nothing changes twice.
    sandbox.deliver_pending(force=True)
    with app.app_context():
        visit = db.session.get(MasterBooking, visit_id)
        assert visit.status == "CONFIRMED" and visit.dependent_id == family.child
        assert [i.status for i in visit.items] == ["CONFIRMED"] * 3
        assert {p.id for i in visit.items for p in i.providers} == {
            family.doc1,
            family.lab_provider,
        }
        assert visit.wallet_applied == 15_000 and visit.discount > 0

    # The printable receipt.
    page.click("text=GST receipt")
    page.wait_for_url(re.compile(rf"/me/visits/{visit_id}/receipt$"))
    receipt = page.content()
    assert "Tax invoice" in receipt and "29ABCDE1234F1Z5" in receipt
    assert "Paid from wallet" in receipt and "₹150.00" in receipt


def test_a_time_taken_meanwhile_is_said_in_place_of_the_form(
    app, page, live_server, family, make_user
):
    """Another patient holds the time while this one reads the book page: Hold answers in
    place of the form (the boosted post's fragment), the top bar and the address stay."""
    from tests.web.booking.helpers import hold

    day = weekday_ahead()
    sign_in(page, family.patient.email, PASSWORD)
    book_url = "/me/book?" + urlencode(
        {
            "provider": family.doc1,
            "service": family.consult,
            "clinic": family.clinic,
            "start": slot(day, 10).isoformat(),
        }
    )
    page.goto(book_url)
    shown_at = page.url
    other = make_user("patient", name="Someone Else")
    hold(app, family, patient=other, start=slot(day, 10))  # someone else, meanwhile
    page.click("text=Hold this slot")
    taken = page.locator("#book-form #time-taken")
    taken.wait_for()
    assert "That time was just taken" in taken.inner_text()
    assert page.locator("form[action='/me/book']").count() == 0
    assert page.locator(".who").inner_text() == "Priya Sharma"  # the page around it stays
    assert page.url == shown_at
    page.click("text=Choose another time that day")
    page.wait_for_url(re.compile(r"/find/times\?"))
