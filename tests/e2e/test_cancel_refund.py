"""In Chromium: a patient with a paid three-item visit cancels one item, sees the refund
previewed (htmx), confirms, and watches the refund go from pending to processed when the
sandbox's refund.processed webhook arrives."""

import re

import pytest

import portal.booking.tasks  # noqa: F401  (until create_app imports it)
import portal.refunds.tasks  # noqa: F401
from portal.booking import visits
from portal.booking.models import IndividualBooking, MasterBooking
from portal.extensions import db
from portal.refunds.models import Refund
from tests.booking.factories import quoted_checkout
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.web.booking.helpers import build_catalog, slot, weekday_ahead

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _ledger_stays_sound(ledger_stays_sound):
    """Money moves in these tests: the ledger must balance afterwards."""


def test_patient_cancels_one_of_three_and_sees_the_refund_arrive(
    app, page, live_server, sandbox, make_user
):
    patient = make_user("patient", name="Meera Iyer")
    day = weekday_ahead(5)  # well over 48 h ahead: the full-refund tier
    with app.app_context():
        cat = build_catalog(make_user)
        me = db.session.get(type(patient), patient.id)
        first = visits.add_item(
            me,
            patient_id=me.id,
            service_id=cat.consult,
            provider_ids=[cat.doc1],
            clinic_id=cat.clinic,
            start_at=slot(day, 10),
        )
        for service_id, provider, hh in (
            (cat.follow, cat.doc1, 11),
            (cat.lab, cat.lab_provider, 12),
        ):
            visits.add_item(
                me,
                patient_id=me.id,
                service_id=service_id,
                provider_ids=[provider],
                clinic_id=cat.clinic,
                start_at=slot(day, hh),
                visit_id=first.master_id,
            )
        visit_id = first.master_id
        result = quoted_checkout(
            me, visit_id, 0, callback_url=f"{live_server}/me/visits/{visit_id}/paid"
        )
        checkout_url = result.redirect_url
        db.session.remove()

    sign_in(page, patient.email, PASSWORD)
    page.goto(checkout_url)
    page.click("button.pay")
    page.wait_for_url(re.compile(rf"/me/visits/{visit_id}/confirmation(\?payment=\w+)?$"))
    sandbox.deliver_pending(force=True)
    with app.app_context():
        items = db.session.get(MasterBooking, visit_id).items
        lab = next(i for i in items if i.service.name == "Blood test")
        lab_id, lab_paid = lab.id, lab.paid_amount
        db.session.remove()

    page.goto(f"/me/visits/{visit_id}/cancel")
    assert page.locator("article[id^=cancel-item-]").count() == 3
    page.check(f"input[name=items][value='{lab_id}']")
    page.wait_for_selector("#refund-total")  # the htmx preview
    assert page.locator("#refund-total").inner_text() == "₹353"
    assert page.url.endswith(f"/me/visits/{visit_id}/cancel")  # swapped, no navigation
    page.fill("textarea[name=reason]", "Test done elsewhere")
    page.click("#confirm-cancel")
    page.wait_for_url(re.compile(rf"/me/visits/{visit_id}/refunds$"))
    row = page.locator("tr[id^=refund-]")
    assert row.count() == 1 and "Pending" in row.inner_text() and "₹353" in row.inner_text()
    assert "Partially cancelled" in page.content()

    # Razorpay processes the refund and sends refund.processed; the page polls.
    sandbox.advance(10)
    sandbox.deliver_pending(force=True)
    page.wait_for_selector("tr.refund-processed", timeout=10_000)
    assert "Processed" in page.locator("tr[id^=refund-]").inner_text()
    with app.app_context():
        [refund] = db.session.query(Refund).all()
        assert refund.status == "PROCESSED" and refund.amount == lab_paid
        assert db.session.get(IndividualBooking, lab_id).status == "CANCELLED"
        others = [i.status for i in db.session.get(MasterBooking, visit_id).items if i.id != lab_id]
        assert others == ["CONFIRMED", "CONFIRMED"]
        store = sandbox.store
        assert len(store.refunds) == 1
        db.session.remove()
