"""In Chromium: Back after a money form never shows the form as it was before the click
(htmx's history snapshot), and never lands on a form post ("Confirm form resubmission").

The pages with money forms carry ``hx-history="false"``: htmx keeps no snapshot of them and
a Back to one loads it again from the server (``refreshOnHistoryMiss``)."""

import re

import pytest

from portal.booking import lifecycle, prices, visits
from portal.booking.models import Coupon, MasterBooking
from portal.extensions import db
from tests.booking.factories import credit_wallet, quoted_checkout
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.web.booking.helpers import build_catalog, hold, slot, weekday_ahead

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _ledger_stays_sound(ledger_stays_sound):
    """Money moves in these tests: the ledger must balance afterwards."""


def _held_visit(app, make_user, hours=(10,), coupon=None):
    """A patient's unpaid visit (five weekdays ahead), and ``coupon`` made; returns
    (patient, catalog, visit id, item ids)."""
    patient = make_user("patient", name="Meera Iyer")
    with app.app_context():
        cat = build_catalog(make_user)
        if coupon:
            db.session.add(Coupon(code=coupon, kind="PERCENT", value=1000))
            db.session.commit()
    cat.day = weekday_ahead(5)
    visit_id, item_ids = None, []
    for hh in hours:
        visit_id, item_id = hold(
            app, cat, patient=patient, start=slot(cat.day, hh), visit_id=visit_id
        )
        item_ids.append(item_id)
    return patient, cat, visit_id, item_ids


def _paid_visit(app, make_user, hours=(10, 11)):
    """A patient's visit with a consultation per hour of ``hours`` (five weekdays ahead),
    paid from the wallet; returns (patient, catalog, visit id, item ids)."""
    patient, cat, visit_id, item_ids = _held_visit(app, make_user, hours)
    with app.app_context():
        me = db.session.get(type(patient), patient.id)
        credit_wallet(me.id, 10_000_00)
        visit = db.session.get(MasterBooking, visit_id)
        wallet = prices.pay_quote(visit, 10_000_00).wallet_used
        result = quoted_checkout(me, visit_id, wallet, callback_url="http://portal.test/cb")
        assert result.redirect_url is None
        db.session.commit()
        assert db.session.get(MasterBooking, visit_id).status == "CONFIRMED"
        db.session.remove()
    return patient, cat, visit_id, item_ids


def _refused_then_chosen(page, url, submit="#move"):
    """No time chosen: refused (422), the page again with why, its address kept; then
    the third time offered, sent."""
    page.goto(url)
    page.click(submit)
    page.wait_for_selector("#slots .error")
    assert page.url.endswith(url)
    page.locator("#slots input[name=slot]").nth(2).check()
    page.click(submit)


def _back_to(page, address):
    """Back, to ``address`` (a pattern) loaded again."""
    page.go_back()
    page.wait_for_url(re.compile(address))
    page.wait_for_load_state("networkidle")


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

    _back_to(page, rf"/me/visits/{visit_id}/cancel")
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

    _back_to(page, rf"/provider/bookings/{first}/cancel$")
    page.wait_for_selector("text=Only confirmed appointments can be cancelled.")
    assert page.locator("main form button.danger").count() == 0
    assert page.locator("#provider-cancel-terms").count() == 0


def test_back_after_a_refused_move_then_a_move_is_the_reschedule_page(app, page, make_user):
    patient, _, visit_id, (first, _second) = _paid_visit(app, make_user)
    sign_in(page, patient.email, PASSWORD)
    _refused_then_chosen(page, f"/me/bookings/{first}/reschedule")
    page.wait_for_url(re.compile(rf"/me/visits/{visit_id}$"))
    assert "Moved to" in page.locator("#flashes").inner_text()

    _back_to(page, rf"/me/bookings/{first}/reschedule$")
    # The reschedule page, loaded again (not Chromium's "Confirm form resubmission").
    page.wait_for_selector("h1:has-text('Reschedule')")
    assert page.locator("section#fee").count() == 1


def _coupon_meanwhile(app, patient, visit_id, code):
    """The price changes after the page was shown (a coupon applied in another tab)."""
    with app.app_context():
        me = db.session.get(type(patient), patient.id)
        visits.apply_coupon(me, visit_id, code)
        db.session.remove()


def test_back_after_a_refused_pay_then_paying_online_is_the_visit(app, page, make_user, sandbox):
    patient, _, visit_id, _ = _held_visit(app, make_user, coupon="TAB10")
    sign_in(page, patient.email, PASSWORD)
    page.goto(f"/me/visits/{visit_id}")
    _coupon_meanwhile(app, patient, visit_id, "TAB10")
    page.click("#pay")  # the amount on the button is no longer the price: refused (422)
    page.wait_for_selector("#summary .error")
    assert page.url.endswith(f"/me/visits/{visit_id}")  # the address kept
    page.click("#pay")  # the amount now shown: to the gateway's page, a full navigation
    page.wait_for_url(re.compile(r"/sandbox/checkout/order_"))
    page.click("button.pay")
    page.wait_for_url(re.compile(rf"/me/visits/{visit_id}/confirmation(\?payment=\w+)?$"))

    page.go_back()  # the gateway's page of the paid order
    page.wait_for_url(re.compile(r"/sandbox/checkout/order_"))
    _back_to(page, rf"/me/visits/{visit_id}$")
    # The visit as it is now (paid, no pay button), not "Confirm form resubmission".
    page.wait_for_selector("#amount-paid")
    assert page.locator("#pay").count() == 0


def test_back_after_a_refused_pay_then_paying_from_the_wallet_is_the_visit(app, page, make_user):
    patient, _, visit_id, _ = _held_visit(app, make_user, coupon="TAB10")
    with app.app_context():
        credit_wallet(patient.id, 10_000_00)
        db.session.remove()
    sign_in(page, patient.email, PASSWORD)
    page.goto(f"/me/visits/{visit_id}?wallet=5000")
    _coupon_meanwhile(app, patient, visit_id, "TAB10")
    page.click("#pay")  # refused: the wallet amount stated is no longer the price
    page.wait_for_selector("#summary .error")
    assert re.search(rf"/me/visits/{visit_id}(\?|$)", page.url)
    page.click("#pay")
    page.wait_for_url(re.compile(rf"/me/visits/{visit_id}/confirmation(\?payment=\w+)?$"))

    _back_to(page, rf"/me/visits/{visit_id}(\?|$)")
    page.wait_for_selector("#amount-paid")
    assert page.locator("#pay").count() == 0


def test_back_after_the_admins_refused_then_done_move_is_the_reschedule_page(app, page, make_user):
    _, _, visit_id, (first, _second) = _paid_visit(app, make_user)
    admin = make_user("admin", name="Desk Admin")
    sign_in(page, admin.email, PASSWORD)
    _refused_then_chosen(page, f"/admin/bookings/{first}/reschedule")
    page.wait_for_url(re.compile(rf"/admin/visits/{visit_id}$"))
    assert "Moved to" in page.locator("#flashes").inner_text()

    _back_to(page, rf"/admin/bookings/{first}/reschedule$")
    page.wait_for_selector("h1:has-text('Reschedule booking')")
    assert page.locator("#current-time").count() == 1


def test_back_after_the_admins_refused_then_done_rebook_is_the_rebook_page(app, page, make_user):
    _, _, visit_id, (item_id,) = _held_visit(app, make_user)
    with app.app_context():
        visit = lifecycle.lock_visit(visit_id)
        lifecycle.expire(visit)
        db.session.commit()
        db.session.remove()
    admin = make_user("admin", name="Desk Admin")
    sign_in(page, admin.email, PASSWORD)
    _refused_then_chosen(
        page, f"/admin/bookings/{item_id}/rebook", "main form.stack button[type=submit]"
    )
    page.wait_for_url(re.compile(r"/admin/visits/\d+$"))
    assert not page.url.endswith(f"/admin/visits/{visit_id}")  # a new visit

    _back_to(page, rf"/admin/bookings/{item_id}/rebook$")
    page.wait_for_selector("h1:has-text('Book again')")
