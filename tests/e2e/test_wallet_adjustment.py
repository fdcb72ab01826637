"""In Chromium: an admin credits ₹15,000 to a patient's wallet (above the threshold, so it
waits), a second admin approves it in the approvals queue after a confirmation stating
the amount, the patient sees it with its public reason in the wallet history, and the
audit viewer shows both steps."""

import re

import pytest

from portal.extensions import db
from portal.wallet.models import WalletAdjustment
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

REASON = "Goodwill for the cancelled camp"
NOTE = "Camp on 3 March cancelled by the clinic; CFO agreed"


@pytest.fixture(autouse=True)
def _ledger_stays_sound(ledger_stays_sound):
    """Money moves: the ledger must balance afterwards."""


def test_a_large_adjustment_approved_by_a_second_admin_reaches_the_patient(app, page, make_user):
    maker = make_user("admin", email="admin@demo.clinic", name="Asha Maker")
    checker = make_user("admin", email="admin2@demo.clinic", name="Ravi Checker")
    patient = make_user("patient", email="patient@demo.clinic", name="Meera Iyer")

    # The maker finds the patient and asks for ₹15,000.
    sign_in(page, maker.email, PASSWORD)
    page.goto("/admin/users?role=patient")
    page.locator(f"#user-{patient.id} a", has_text="Wallet").click()
    page.wait_for_url(re.compile(rf"/admin/wallets/{patient.id}$"))
    page.check("input[name=direction][value=credit]")
    page.fill("input[name=amount]", "15000")
    page.fill("input[name=public_reason]", REASON)
    page.fill("textarea[name=note]", NOTE)
    page.click("#adjustment-form button[type=submit]")
    page.wait_for_url(re.compile(r"/admin/adjustments/\d+$"))
    assert "Large adjustments require additional approval" in page.content()
    assert page.locator("#adjustment-status").inner_text() == "Pending approval"
    adjustment_id = int(page.url.rsplit("/", 1)[1])
    page.goto("/admin/approvals")
    row = page.locator(f"#wallet_adjustment-approval-{adjustment_id}")
    assert "Another administrator must decide" in row.inner_text()

    # The checker approves it, confirming the amount.
    page.context.clear_cookies()
    sign_in(page, checker.email, PASSWORD)
    page.goto("/admin/approvals")
    row = page.locator(f"#wallet_adjustment-approval-{adjustment_id}")
    assert "₹15,000" in row.inner_text() and "Asha Maker" in row.inner_text()
    asked = []

    def accept(dialog):
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    row.locator("input[name=note]").fill("Checked with the CFO")
    row.get_by_role("button", name="Approve").click()
    page.wait_for_selector("#decided-approvals")
    assert asked and "credit of ₹15,000" in asked[0]
    assert "Approved." in page.content()
    with app.app_context():
        done = db.session.get(WalletAdjustment, adjustment_id)
        assert done.status == "APPLIED" and done.balance_after == 15_000_00
        db.session.remove()

    # The patient sees it, with the public reason (not the internal note).
    page.context.clear_cookies()
    sign_in(page, patient.email, PASSWORD)
    page.goto("/me/wallet")
    assert page.locator("#wallet-balance").inner_text() == "₹15,000"
    history = page.locator("#wallet-history").inner_text()
    assert REASON in history and "+₹15,000" in history and NOTE not in history

    # The audit viewer shows both steps, reached from the adjustment's History link.
    page.context.clear_cookies()
    sign_in(page, maker.email, PASSWORD)
    page.goto(f"/admin/adjustments/{adjustment_id}")
    page.locator(".history-link").click()
    page.wait_for_url(re.compile(r"/admin/audit\?object_type=wallet_adjustment"))
    entries = page.locator("#audit-entries tbody tr")
    assert entries.count() == 2
    newest, oldest = entries.nth(0).inner_text(), entries.nth(1).inner_text()
    assert "wallet.adjustment_approved" in newest and "Ravi Checker" in newest
    assert "wallet.adjustment_requested" in oldest and "Asha Maker" in oldest
