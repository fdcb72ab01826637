"""A provider completes an appointment in the browser and sees the payout processed."""

import pytest

from portal.extensions import db
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.payouts.conftest import _ledger_balances_after_each_test, payouts_of, world, x  # noqa: F401  (fixtures used here)

pytestmark = pytest.mark.e2e


def test_provider_completes_an_appointment_and_sees_the_payout(page, world, x):
    provider, user = world.ready_provider("INSTANT", commission_bps=500)
    booking = world.booking(provider, fee=80_000)
    db.session.commit()
    page.on("dialog", lambda dialog: dialog.accept())  # "Mark this appointment as completed?"

    sign_in(page, user.email, PASSWORD)
    page.goto("/provider/schedule")
    row = page.locator(f"#booking-{booking.id}")
    row.get_by_role("button", name="Start").click()
    page.locator(f"#booking-{booking.id} [data-status=STARTED]").wait_for()
    page.locator(f"#booking-{booking.id}").get_by_role("button", name="Complete").click()
    page.locator(f"#booking-{booking.id} [data-status=COMPLETED]").wait_for()

    x.settle()  # RazorpayX processes the payout and sends its webhooks
    (payout,) = payouts_of(provider.id)
    assert payout.status == "PROCESSED" and payout.net == 76_000

    page.goto("/provider/earnings")
    payouts = page.locator("#payouts")
    payouts.locator("[data-status=PROCESSED]").wait_for()
    assert "₹760" in payouts.inner_text()
    assert page.locator("#payable [data-amount]").get_attribute("data-amount") == "0"
