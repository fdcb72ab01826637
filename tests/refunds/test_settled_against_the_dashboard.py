"""A failed refund settled against a refund made on Razorpay's dashboard (docs/refunds.md,
"A refund made on Razorpay's dashboard"). On ₹882.50 with ₹100 refunded on the dashboard,
cancelling both items fails the lab's ₹353 at Razorpay and the wallet refuses it (it would
give ₹100 more than was paid). Settling closes the ₹100 the dashboard gave back (not paid
again) and puts the ₹253 still owed in the wallet: one unit of work, once."""

import re

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.refunds import failed as refunds_failed
from portal.refunds import lookup as refunds_lookup
from portal.refunds import outside
from portal.refunds.common import CancellationError
from portal.refunds.models import Refund
from tests.refunds.conftest import _ledger_stays_sound, clock, gateway, users, world  # noqa: F401
from tests.refunds.helpers import (
    book_and_pay,
    consult_and_lab,
    login,
    quoted_cancel,
    settle_refunds,
    with_known_passwords,
)

NOTE = "Finance refunded ₹100 on the dashboard for this lab test"


def _paid_with_a_dashboard_refund(world, users, gateway, dashboard):
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, consult_and_lab(world))
    [payment] = [p for p in visit.payments if p.razorpay_payment_id]
    assert payment.captured_amount == 88_250
    made = gateway.sandbox.refund_at_gateway(payment.razorpay_payment_id, dashboard)
    gateway.sandbox.advance(10)
    gateway.deliver()
    return patient, visit, made["id"]


def _failed(visit):
    db.session.expire_all()
    return [
        r
        for r in refunds_lookup.refunds_for_visit(visit.id)
        if r.status == "FAILED" and not r.superseded
    ]


def _cancelled_with_a_dashboard_refund(world, users, gateway, dashboard=10_000):
    patient, visit, dashboard_id = _paid_with_a_dashboard_refund(world, users, gateway, dashboard)
    quoted_cancel(patient, visit.id, [i.id for i in visit.items])
    settle_refunds(gateway)  # the consultation's ₹529.50 processed by Razorpay
    return patient, visit, dashboard_id


def test_settling_closes_what_the_dashboard_gave_back_and_the_rest_goes_to_the_wallet(
    world, users, gateway, clock
):
    patient, visit, dashboard_id = _cancelled_with_a_dashboard_refund(world, users, gateway)
    [failed] = _failed(visit)
    assert failed.amount == 35_300 and "greater than amount captured" in failed.failure_reason
    assert balance(chart.REFUNDS_PAYABLE) == 35_300
    admin = users(world.admin)
    with pytest.raises(CancellationError, match="outside the portal"):
        refunds_failed.refund_to_wallet(admin, failed.id, "Razorpay refused it")

    shown = outside.preview(admin, failed.id)
    assert (shown.amount, shown.covered, shown.to_wallet) == (35_300, 10_000, 25_300)
    assert shown.parts == ((dashboard_id, 10_000),)
    settled = outside.settle_refund(admin, failed.id, shown_to_wallet=25_300, note=NOTE)

    db.session.expire_all()
    assert balance(chart.patient_wallet(patient.id)) == 25_300
    assert balance(chart.REFUNDS_PAYABLE) == 0
    failed = db.session.get(Refund, failed.id)
    assert (failed.status, failed.superseded) == ("FAILED", True)
    live = [r for r in refunds_lookup.refunds_for_visit(visit.id) if not r.superseded]
    assert {r.status for r in live} == {"PROCESSED"}
    assert sum(r.amount for r in live) == 88_250  # what the patient paid, and no more
    [covered] = [r for r in live if r.outside_refund_id]
    assert (covered.amount, covered.destination, covered.outside_refund_id) == (
        10_000,
        "GATEWAY",
        dashboard_id,
    )
    assert covered.razorpay_refund_id is None and covered.retry_of_id == failed.id
    assert (settled.wallet.amount, settled.wallet.destination) == (25_300, "WALLET")
    [entry] = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "refund.settled_outside")
    ).all()
    assert (entry.object_type, entry.object_id) == ("refund", str(failed.id))
    assert entry.after["note"] == NOTE and entry.after["to_wallet"] == 25_300
    assert entry.after["covered"] == [[dashboard_id, 10_000]]

    with pytest.raises(CancellationError, match="settled already"):
        outside.settle_refund(admin, failed.id, shown_to_wallet=25_300, note=NOTE)
    with pytest.raises(CancellationError):
        refunds_failed.refund_to_wallet(admin, failed.id, "and again")
    db.session.expire_all()
    assert balance(chart.patient_wallet(patient.id)) == 25_300
    assert balance(chart.REFUNDS_PAYABLE) == 0


def test_a_refund_no_dashboard_refund_touched_is_not_settled(world, users, gateway, clock):
    """Razorpay failed the refund for another reason (a closed card): nothing was given back
    outside the portal, so there is nothing to settle against: the wallet or a retry."""
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, consult_and_lab(world))
    gateway.sandbox.set_faults(refund_outcome="failed")
    lab = [i for i in visit.items if i.service_id == world.lab][0]
    quoted_cancel(patient, visit.id, [lab.id])
    for _ in range(3):
        settle_refunds(gateway)
    [failed] = _failed(visit)
    admin = users(world.admin)
    with pytest.raises(CancellationError, match="nothing of this payment outside the portal"):
        outside.preview(admin, failed.id)
    with pytest.raises(CancellationError, match="nothing of this payment outside the portal"):
        outside.settle_refund(admin, failed.id, shown_to_wallet=0, note=NOTE)
    db.session.expire_all()
    assert not db.session.get(Refund, failed.id).superseded
    assert balance(chart.REFUNDS_PAYABLE) == 35_300


def test_settling_waits_until_razorpay_can_be_asked(world, users, gateway, clock):
    patient, visit, _dashboard = _cancelled_with_a_dashboard_refund(world, users, gateway)
    [failed] = _failed(visit)
    admin = users(world.admin)
    gateway.sandbox.set_faults(fail_next=10, error_status=503, match="refunds")
    with pytest.raises(CancellationError, match="could not be asked") as refused:
        outside.settle_refund(admin, failed.id, shown_to_wallet=25_300, note=NOTE)
    assert "try again" in str(refused.value)
    gateway.sandbox.reset_faults()
    db.session.expire_all()
    assert not db.session.get(Refund, failed.id).superseded
    assert balance(chart.patient_wallet(patient.id)) == 0
    assert balance(chart.REFUNDS_PAYABLE) == 35_300
    outside.settle_refund(admin, failed.id, shown_to_wallet=25_300, note=NOTE)
    assert balance(chart.patient_wallet(patient.id)) == 25_300


def test_a_settlement_that_changed_since_it_was_shown_moves_nothing(world, users, gateway, clock):
    """The page said ₹353 to the wallet (no dashboard refund counted then, say): the post
    is refused with the figures as they are now, and confirming those settles."""
    patient, visit, _dashboard = _cancelled_with_a_dashboard_refund(world, users, gateway)
    [failed] = _failed(visit)
    admin = users(world.admin)
    with pytest.raises(CancellationError, match="now ₹100 .* and ₹253 to the wallet"):
        outside.settle_refund(admin, failed.id, shown_to_wallet=35_300, note=NOTE)
    with pytest.raises(CancellationError, match="Check the settlement"):
        outside.settle_refund(admin, failed.id, shown_to_wallet=None, note=NOTE)
    with pytest.raises(CancellationError, match="Detailed note"):
        outside.settle_refund(admin, failed.id, shown_to_wallet=25_300, note="short")
    db.session.expire_all()
    assert balance(chart.patient_wallet(patient.id)) == 0
    outside.settle_refund(admin, failed.id, shown_to_wallet=25_300, note=NOTE)
    assert balance(chart.patient_wallet(patient.id)) == 25_300


def test_only_an_administrator_settles(world, users, gateway, clock):
    patient, visit, _dashboard = _cancelled_with_a_dashboard_refund(world, users, gateway)
    [failed] = _failed(visit)
    from portal.booking.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        outside.settle_refund(patient, failed.id, shown_to_wallet=25_300, note=NOTE)
    with pytest.raises(PermissionDenied):
        outside.preview(patient, failed.id)


def test_one_dashboard_refund_is_counted_once_across_two_failed_refunds(
    world, users, gateway, clock
):
    """₹600 on the dashboard leaves Razorpay room for ₹282.50: both items' refunds (₹529.50,
    ₹353) are refused there. The first settled takes ₹353 of the ₹600 (nothing to the
    wallet), the second the ₹247 left and ₹282.50 to the wallet: the patient has ₹882.50
    back in all, the dashboard refund counted once."""
    patient, visit, dashboard_id = _cancelled_with_a_dashboard_refund(
        world, users, gateway, dashboard=60_000
    )
    failed = _failed(visit)
    assert sorted(r.amount for r in failed) == [35_300, 52_950]
    lab, consult = sorted(failed, key=lambda r: r.amount)
    admin = users(world.admin)
    first = outside.preview(admin, lab.id)
    assert (first.covered, first.to_wallet) == (35_300, 0)
    settled = outside.settle_refund(admin, lab.id, shown_to_wallet=0, note=NOTE)
    assert settled.wallet is None
    second = outside.preview(admin, consult.id)
    assert (second.covered, second.to_wallet) == (24_700, 28_250)
    assert second.parts == ((dashboard_id, 24_700),)
    outside.settle_refund(admin, consult.id, shown_to_wallet=28_250, note=NOTE)
    db.session.expire_all()
    assert balance(chart.patient_wallet(patient.id)) == 28_250
    assert balance(chart.REFUNDS_PAYABLE) == 0
    covered = db.session.scalars(
        sa.select(Refund).where(Refund.outside_refund_id == dashboard_id)
    ).all()
    assert sum(r.amount for r in covered) == 60_000


def test_the_pages_offer_it_where_the_wallet_is_refused_and_show_it_done(
    world, users, gateway, clock, client, app
):
    patient, visit, dashboard_id = _cancelled_with_a_dashboard_refund(world, users, gateway)
    [failed] = _failed(visit)
    admin = users(world.admin)
    with_known_passwords()
    refund_id, visit_id, number = failed.id, visit.id, visit.number
    patient_email, admin_email = patient.email, admin.email
    db.session.commit()

    login(client, admin_email)
    listed = client.get("/admin/refunds?status=FAILED").get_data(as_text=True)
    assert f"/admin/refunds/{refund_id}/settle" not in listed  # nothing known yet
    refused = client.post(
        f"/admin/refunds/{refund_id}/to-wallet", data={"confirmed_amount": "35300"}
    )
    assert refused.status_code == 303
    listed = client.get("/admin/refunds?status=FAILED").get_data(as_text=True)
    row = re.search(rf'id="refund-{refund_id}".*?</tr>', listed, re.S).group(0)
    assert f"/admin/refunds/{refund_id}/settle" in row and "Send to wallet" not in row

    page = client.get(f"/admin/refunds/{refund_id}/settle")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert dashboard_id in html and "₹100" in html and "₹253" in html
    assert 'name="shown_to_wallet" value="25300"' in html

    app.config["WTF_CSRF_ENABLED"] = True
    try:
        no_token = client.post(
            f"/admin/refunds/{refund_id}/settle",
            data={"confirmed_amount": "35300", "shown_to_wallet": "25300", "note": NOTE},
        )
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert no_token.status_code == 400
    short = client.post(
        f"/admin/refunds/{refund_id}/settle",
        data={"confirmed_amount": "35300", "shown_to_wallet": "25300", "note": "short"},
    )
    assert short.status_code == 422 and "Detailed note" in short.get_data(as_text=True)
    done = client.post(
        f"/admin/refunds/{refund_id}/settle",
        data={"confirmed_amount": "35300", "shown_to_wallet": "25300", "note": NOTE},
    )
    assert done.status_code == 303
    again = client.post(
        f"/admin/refunds/{refund_id}/settle",
        data={"confirmed_amount": "35300", "shown_to_wallet": "25300", "note": NOTE},
        follow_redirects=True,
    )
    assert "settled already" in again.get_data(as_text=True)
    client.post("/auth/logout")

    login(client, patient_email)
    assert client.get(f"/admin/refunds/{refund_id}/settle").status_code in (403, 404)
    wallet = client.get("/me/wallet").get_data(as_text=True)
    line = next(r for r in wallet.split("<tr>") if "Rest of a refund" in r)
    assert "₹253" in line and f"Visit {number}" in line
    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    assert 'id="amount-refunded">−₹882.50' in page and "amount-refund-pending" not in page
    refunds = client.get(f"/me/visits/{visit_id}/refunds").get_data(as_text=True)
    assert "Refunded by the clinic on Razorpay" in refunds
