"""In Chromium: the transactions console filtered to discrepancies, a refund processed only
at the gateway opened, its case synced and seen matched. And a payment captured only at the gateway (its webhooks dropped, the checkout
callback lost) is found by a run; the admin filters the reconciliation screen to status
differences, opens the discrepancy, syncs it from the gateway and sees it matched (and the
visit confirmed). The transactions console is another helper's: this drives the
reconciliation screen."""

import re
import time

import pytest
from playwright.sync_api import expect

from portal.booking import checkout, lookup, visits
from portal.db import utcnow
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.reconcile import run as recon
from portal.reconcile.window import day_window
from tests.booking.factories import quoted_checkout
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.refunds.helpers import quoted_cancel
from tests.web.booking.helpers import build_catalog, slot, weekday_ahead

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _ledger_stays_sound(ledger_stays_sound):
    """Money moves: the ledger must balance afterwards."""


@pytest.fixture
def sandbox(app, sandbox):
    """The e2e sandbox (tests/e2e/conftest.py), level with our clock and no pending grace."""
    # The session's sandbox may run ahead of our clock by what earlier tests advanced it; a
    # run lists records up to the second before it starts (by our clock), so start level.
    sandbox.store.offset = 0.0
    saved = app.config.get("RECON_PENDING_GRACE_SECONDS")
    app.config["RECON_PENDING_GRACE_SECONDS"] = 0  # the capture is seconds old
    yield sandbox
    app.config["RECON_PENDING_GRACE_SECONDS"] = saved


def test_admin_syncs_a_missed_capture_and_sees_it_matched(app, page, sandbox, make_user):
    began = utcnow().astimezone(CLINIC_TZ).date()
    patient = make_user("patient", name="Kiran Das")
    admin = make_user("admin", name="Finance Admin")
    with app.app_context():
        cat = build_catalog(make_user)
        me = db.session.get(type(patient), patient.id)
        item = visits.add_item(
            me,
            patient_id=me.id,
            service_id=cat.consult,
            provider_ids=[cat.doc1],
            clinic_id=cat.clinic,
            start_at=slot(weekday_ahead(3), 10),
        )
        visit_id = item.master_id
        result = quoted_checkout(me, visit_id, 0, callback_url="http://127.0.0.1/cb")
        sandbox.set_faults(drop_events="payment.authorized,payment.captured,order.paid")
        payment = sandbox.store.pay_order(result.payment.razorpay_order_id)
        sandbox.deliver_pending()
        # A run lists the gateway's records up to the second before it starts; the shared
        # sandbox's clock may be ahead of ours by what earlier tests advanced it.
        ahead = max(0.0, sandbox.store.now_f() - time.time())
        time.sleep(min(ahead, 30.0) + 1.1)
        # From the day the test began: run across India's midnight (the CI run at 00:01
        # IST), "today" alone left out the payment or refund made a second before it.
        today = utcnow().astimezone(CLINIC_TZ).date()
        start, end = day_window(began, today)
        done = recon.execute(recon.start_run(start, end, trigger=recon.ADMIN).id)
        assert done.status == "finished" and done.new_discrepancies == 1, done.error
        assert lookup.get_visit(visit_id).status != "CONFIRMED"
        db.session.remove()

    sign_in(page, admin.email, PASSWORD)
    page.goto("/admin/reconciliation")
    page.select_option("select[name=reason]", "status_differs")
    page.click("#cases button:has-text('Filter')")
    expect(page).to_have_url(re.compile(r"reason=status_differs"))
    page.click(f"a:has-text('{payment['id']}')")
    expect(page.locator("#case-status")).to_have_text("Discrepancy")
    expect(page.locator("body")).to_contain_text("PENDING")
    page.click("button:has-text('Sync from the gateway')")
    expect(page.locator("#case-status")).to_have_text("Matched")
    expect(page.locator("#flashes")).to_contain_text("the case is matched")
    with app.app_context():
        assert lookup.get_visit(visit_id).status == "CONFIRMED"


def test_console_filter_open_a_discrepancy_sync_it_and_see_it_matched(
    app, page, sandbox, make_user, live_server
):
    from portal.refunds import lookup as refunds_lookup
    from portal.refunds.models import Refund

    began = utcnow().astimezone(CLINIC_TZ).date()
    patient = make_user("patient", name="Asha Pillai")
    admin = make_user("admin", name="Console Admin")
    with app.app_context():
        cat = build_catalog(make_user)
        me = db.session.get(type(patient), patient.id)
        item = visits.add_item(
            me,
            patient_id=me.id,
            service_id=cat.consult,
            provider_ids=[cat.doc1],
            clinic_id=cat.clinic,
            start_at=slot(weekday_ahead(4), 11),
        )
        result = quoted_checkout(me, item.master_id, 0, callback_url="http://127.0.0.1/cb")
        order_id = result.payment.razorpay_order_id
        payment = sandbox.store.pay_order(order_id)
        checkout.complete_checkout_callback(
            {
                "razorpay_order_id": order_id,
                "razorpay_payment_id": payment["id"],
                "razorpay_signature": sandbox.store.checkout_signature(order_id, payment["id"]),
            }
        )
        sandbox.set_faults(drop_events="refund.processed")
        quoted_cancel(me, item.master_id, [item.id])
        [refund] = refunds_lookup.refunds_for_visit(item.master_id)
        refund_id, rfnd = refund.id, refund.razorpay_refund_id
        # Processed at the gateway (its webhook dropped) after the sandbox's refund delay,
        # no more: the run below waits for our clock to pass the sandbox's.
        sandbox.advance(sandbox.store.delays["refund"])
        sandbox.deliver_pending()
        ahead = max(0.0, sandbox.store.now_f() - time.time())
        time.sleep(min(ahead, 30.0) + 1.1)
        # From the day the test began: run across India's midnight (the CI run at 00:01
        # IST), "today" alone left out the payment or refund made a second before it.
        today = utcnow().astimezone(CLINIC_TZ).date()
        start, end = day_window(began, today)
        done = recon.execute(recon.start_run(start, end, trigger=recon.ADMIN).id)
        assert done.status == "finished", done.error
        assert db.session.get(Refund, refund_id).status == "PENDING"
        db.session.remove()

    sign_in(page, admin.email, PASSWORD)
    page.goto("/admin/transactions")
    page.select_option("select[name=recon]", "discrepancy")
    page.click("form.filters button:has-text('Filter')")
    expect(page).to_have_url(re.compile(r"recon=discrepancy"))
    row = page.locator("tr", has_text=rfnd)
    expect(row).to_have_count(1)
    row.locator("a").first.click()
    expect(page.locator("#recon-status")).to_have_text("discrepancy")
    # A boosted link pushes its URL after the swap: wait for it before keeping it.
    expect(page).to_have_url(re.compile(r"/admin/transactions/\d+$"))
    detail_url = page.url
    page.click("a:has-text('the case')")
    expect(page.locator("#case-status")).to_have_text("Discrepancy")
    page.click("button:has-text('Sync from the gateway')")
    expect(page.locator("#case-status")).to_have_text("Matched")
    page.goto(detail_url)
    expect(page.locator("#recon-status")).to_have_text("matched")
    with app.app_context():
        assert db.session.get(Refund, refund_id).status == "PROCESSED"
