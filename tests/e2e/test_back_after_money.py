"""In Chromium: Back after a money form never shows the form as it was before the click
(htmx's history snapshot), and never lands on a form post ("Confirm form resubmission").

The pages with money forms carry ``hx-history="false"``: htmx keeps no snapshot of them and
a Back to one loads it again from the server (``refreshOnHistoryMiss``)."""

import re

import pytest

from portal.booking import prices, visits
from portal.booking.models import MasterBooking
from portal.extensions import db
from tests.booking.factories import credit_wallet, quoted_checkout
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.web.booking.helpers import build_catalog, slot, weekday_ahead

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _ledger_stays_sound(ledger_stays_sound):
    """Money moves in these tests: the ledger must balance afterwards."""


def _paid_visit(app, make_user, hours=(10, 11)):
    """A patient's visit with a consultation per hour of ``hours`` (five weekdays ahead),
    paid from the wallet; returns (patient, catalog, visit id, item ids)."""
    patient = make_user("patient", name="Meera Iyer")
    day = weekday_ahead(5)
    with app.app_context():
        cat = build_catalog(make_user)
        me = db.session.get(type(patient), patient.id)
        visit_id = None
        for hh in hours:
            item = visits.add_item(
                me,
                patient_id=me.id,
                service_id=cat.consult,
                provider_ids=[cat.doc1],
                clinic_id=cat.clinic,
                start_at=slot(day, hh),
                visit_id=visit_id,
            )
            visit_id = item.master_id
        credit_wallet(me.id, 10_000_00)
        visit = db.session.get(MasterBooking, visit_id)
        wallet = prices.pay_quote(visit, 10_000_00).wallet_used
        result = quoted_checkout(me, visit_id, wallet, callback_url="http://portal.test/cb")
        assert result.redirect_url is None
        db.session.commit()
        visit = db.session.get(MasterBooking, visit_id)
        assert visit.status == "CONFIRMED"
        item_ids = [i.id for i in sorted(visit.items, key=lambda i: i.start_at)]
        db.session.remove()
    return patient, cat, visit_id, item_ids


def test_back_after_the_patients_cancel_shows_the_item_cancelled(app, page, make_user):
    patient, _, visit_id, (first, second) = _paid_visit(app, make_user)
    sign_in(page, patient.email, PASSWORD)
    page.goto(f"/me/visits/{visit_id}")
    page.click(f"a[href*='/me/visits/{visit_id}/cancel']")  # boosted: htmx's navigation
    page.wait_for_url(re.compile(rf"/me/visits/{visit_id}/cancel"))
    page.check(f"input[name=items][value='{first}']")
    page.wait_for_selector("#refund-total")
    page.click("#confirm-cancel")
    page.wait_for_url(re.compile(rf"/me/visits/{visit_id}/refunds$"))

    page.go_back()
    page.wait_for_url(re.compile(rf"/me/visits/{visit_id}/cancel"))
    page.wait_for_load_state("networkidle")
    # The page as it is now: the cancelled item is no longer offered, the other one is.
    page.wait_for_selector(f"#cancel-item-{second}")
    assert page.locator(f"#cancel-item-{first}").count() == 0
    assert page.locator(f"input[name=items][value='{first}']").count() == 0


def test_back_after_the_doctors_cancel_shows_the_appointment_cancelled(app, page, make_user):
    _, cat, _, (first, _second) = _paid_visit(app, make_user)
    sign_in(page, cat.provider_user.email, PASSWORD)
    page.goto("/provider/schedule")
    page.goto(f"/provider/bookings/{first}/cancel")
    page.fill("textarea[name=reason]", "Called to a surgery")
    page.click("main form button.danger")
    page.wait_for_url(re.compile(r"/provider/schedule"))

    page.go_back()
    page.wait_for_url(re.compile(rf"/provider/bookings/{first}/cancel$"))
    page.wait_for_load_state("networkidle")
    page.wait_for_selector("text=Only confirmed appointments can be cancelled.")
    assert page.locator("main form button.danger").count() == 0
    assert page.locator("#provider-cancel-terms").count() == 0


def test_back_after_a_refused_move_then_a_move_is_the_reschedule_page(app, page, make_user):
    patient, _, visit_id, (first, _second) = _paid_visit(app, make_user)
    sign_in(page, patient.email, PASSWORD)
    page.goto(f"/me/bookings/{first}/reschedule")
    page.click("#move")  # no time chosen: refused (422), the page again with why
    page.wait_for_selector("#slots .error")
    assert page.url.endswith(f"/me/bookings/{first}/reschedule")
    page.locator("#slots input[name=slot]").nth(2).check()
    page.click("#move")
    page.wait_for_url(re.compile(rf"/me/visits/{visit_id}$"))
    assert "Moved to" in page.locator("#flashes").inner_text()

    page.go_back()
    page.wait_for_url(re.compile(rf"/me/bookings/{first}/reschedule$"))
    page.wait_for_load_state("networkidle")
    # The reschedule page, loaded again (not Chromium's "Confirm form resubmission").
    page.wait_for_selector("h1:has-text('Reschedule')")
    assert page.locator("section#fee").count() == 1
