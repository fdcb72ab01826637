"""The admin's wallet page (the form's messages for bad input, nothing written), the one
approvals queue (a second admin approves, the maker cannot, the confirmation states the
amount) and the patient's wallet history with the public reason."""

import re

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.wallet import adjustments as adj
from portal.wallet.models import WalletAdjustment
from portal.web.forms import wallet as forms
from portal.web.forms.money import MSG_RUPEE_DIGITS, MSG_RUPEE_GROUPING, RUPEE_MESSAGE
from tests.wallet.conftest import fresh

NOTE = "Compensation for the two-hour wait on 3 March"
REASON = "Compensation for a long wait"


def form(amount, direction="credit", note=NOTE, reason=REASON, **extra):
    return {
        "direction": direction,
        "amount": amount,
        "note": note,
        "public_reason": reason,
        **extra,
    }


def count(app):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count(WalletAdjustment.id)))


def test_only_admins_see_the_wallet_pages(client, login, people):
    login(people.patient)
    assert client.get(f"/admin/wallets/{people.patient.id}").status_code == 403
    assert client.post(f"/admin/wallets/{people.patient.id}", data=form("100")).status_code == 403
    client.post("/auth/logout")
    login(people.admin)
    assert client.get(f"/admin/wallets/{people.patient.id}").status_code == 200
    assert client.get(f"/admin/wallets/{people.doctor.id}").status_code == 404
    assert client.get("/admin/adjustments/999").status_code == 404


@pytest.mark.parametrize(
    "data, message",
    [
        (form("100", note="too short"), adj.MSG_NOTE.format(n=10)),
        (form("1500.505"), forms.MSG_DECIMALS),
        (form("15000.001"), forms.MSG_DECIMALS),
        (form("-0"), forms.MSG_NEGATIVE_ZERO),
        (form("-0.00"), forms.MSG_NEGATIVE_ZERO),
        (form("−0"), forms.MSG_NEGATIVE_ZERO),
        (form("0"), forms.MSG_ZERO),
        (form("0.00"), forms.MSG_ZERO),
        (form("-500"), forms.MSG_SIGN),
        (form(""), forms.MSG_EMPTY),
        (form("ten thousand"), RUPEE_MESSAGE),
        (form("1e4"), RUPEE_MESSAGE),
        (form("NaN"), RUPEE_MESSAGE),
        # Ambiguous forms (review rev2: "15 00" was ₹1,500, "١٢٣" ₹123).
        (form("15 00"), MSG_RUPEE_GROUPING),
        (form("1_000"), MSG_RUPEE_GROUPING),
        (form("1,0,0"), MSG_RUPEE_GROUPING),
        (form("١٢٣"), MSG_RUPEE_DIGITS),
        (form("100", direction=""), adj.MSG_DIRECTION),
        (form("100", reason=""), adj.MSG_REASON),
        (form("100", direction="debit"), adj.MSG_INSUFFICIENT),
    ],
)
def test_bad_input_is_a_message_on_the_form_and_nothing_is_written(
    app, client, login, people, data, message
):
    login(people.admin)
    r = client.post(f"/admin/wallets/{people.patient.id}", data=data)
    assert r.status_code == 422
    assert message in r.get_data(as_text=True)
    assert count(app) == 0
    with app.app_context():
        assert not db.session.scalars(
            sa.select(AuditEntry.action).where(AuditEntry.action.startswith("wallet."))
        ).all()


def test_amounts_in_rupees_become_paise(app, client, login, people):
    login(people.admin)
    r = client.post(f"/admin/wallets/{people.patient.id}", data=form("₹1,250.5"))
    assert r.status_code == 303
    with app.app_context():
        assert db.session.scalars(sa.select(WalletAdjustment.amount)).one() == 1_250_50


def test_a_15000_adjustment_waits_for_a_second_admin_who_approves_it(app, client, login, people):
    login(people.admin)
    r = client.post(f"/admin/wallets/{people.patient.id}", data=form("15000"))
    assert r.status_code == 303
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert adj.MSG_APPROVAL in page and "Pending approval" in page
    with app.app_context():
        waiting = db.session.scalars(sa.select(WalletAdjustment)).one()
    queue = client.get("/admin/approvals").get_data(as_text=True)
    assert f'id="wallet_adjustment-approval-{waiting.id}"' in queue
    assert "Another administrator must decide" in queue
    # the maker's own attempt is refused with a message
    url = f"/admin/approvals/wallet_adjustment/{waiting.id}/approve"
    r = client.post(url, data={"note": "me"}, follow_redirects=True)
    assert adj.MSG_SECOND_ADMIN in r.get_data(as_text=True)
    with app.app_context():
        assert balance(chart.patient_wallet(people.patient.id)) == 0

    client.post("/auth/logout")
    login(people.admin2)
    queue = client.get("/admin/approvals").get_data(as_text=True)
    assert "Approve the credit of ₹15,000" in queue  # the confirmation states the amount
    assert "Compensation for a long wait" in queue and "Asha Maker" in queue
    r = client.post(url, data={"note": "Checked the complaint"}, follow_redirects=True)
    assert "Approved." in r.get_data(as_text=True)
    with app.app_context():
        assert balance(chart.patient_wallet(people.patient.id)) == 15_000_00
    decided = client.get("/admin/approvals").get_data(as_text=True)
    trail = re.search(r'id="wallet_adjustment-decided-\d+">(.*?)</tr>', decided, re.S).group(1)
    assert "Asked by Asha Maker" in trail and "Approved by Ravi Checker" in trail
    assert "Checked the complaint" in trail and "₹0 → ₹15,000" in trail

    client.post("/auth/logout")
    login(people.patient)
    wallet = client.get("/me/wallet").get_data(as_text=True)
    assert "Adjustment by the clinic" in wallet and REASON in wallet
    assert NOTE not in wallet  # the internal note stays internal
    assert "₹15,000" in wallet


def test_a_split_15000_still_waits_through_the_page(app, client, login, people):
    login(people.admin)
    for _ in range(2):
        client.post(f"/admin/wallets/{people.patient.id}", data=form("7500"))
    with app.app_context():
        statuses = db.session.scalars(
            sa.select(WalletAdjustment.status).order_by(WalletAdjustment.id)
        ).all()
    assert statuses == ["APPLIED", "PENDING_APPROVAL"]


def test_a_form_sent_twice_makes_one_adjustment(app, client, login, people):
    login(people.admin)
    data = form("100", token="same-token")
    assert client.post(f"/admin/wallets/{people.patient.id}", data=data).status_code == 303
    assert client.post(f"/admin/wallets/{people.patient.id}", data=data).status_code == 303
    assert count(app) == 1


def test_a_tampered_token_too_long_to_keep_is_no_500(app, client, login, people):
    """request_token is VARCHAR(64): a longer one (not the form's) is no token."""
    login(people.admin)
    data = form("100", token="t" * 65)
    assert client.post(f"/admin/wallets/{people.patient.id}", data=data).status_code == 303
    assert count(app) == 1


def test_reject_from_the_queue(app, client, login, people):
    with app.app_context():
        waiting_id = adj.create_adjustment(
            fresh(people.admin), people.patient.id, adj.CREDIT, 20_000_00, NOTE, REASON
        ).id
    login(people.admin2)
    r = client.post(
        f"/admin/approvals/wallet_adjustment/{waiting_id}/reject",
        data={"note": "No evidence"},
        follow_redirects=True,
    )
    assert "Rejected." in r.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(WalletAdjustment, waiting_id).status == "REJECTED"
    assert client.post("/admin/approvals/nope/1/approve").status_code == 404
    assert client.post("/admin/approvals/wallet_adjustment/999/approve").status_code == 404


def test_adjustment_pages_link_to_their_history(app, client, login, people):
    with app.app_context():
        done_id = adj.create_adjustment(
            fresh(people.admin), people.patient.id, adj.CREDIT, 100_00, NOTE, REASON
        ).id
    login(people.admin)
    page = client.get(f"/admin/adjustments/{done_id}").get_data(as_text=True)
    assert f"/admin/audit?object_type=wallet_adjustment&amp;object_id={done_id}" in page
    listing = client.get("/admin/adjustments").get_data(as_text=True)
    assert f'id="adjustment-{done_id}"' in listing
    wallet = client.get(f"/admin/wallets/{people.patient.id}").get_data(as_text=True)
    assert "₹100" in wallet and f"object_id={people.patient.id}" in wallet


def test_an_adjustment_sent_for_approval_says_why(app, client, login, people):
    """Review finding: over the threshold the page said only "Large adjustments require
    additional approval"; it says what was counted (the 24-hour window, what still waits)
    and the threshold."""
    login(people.admin)
    client.post(f"/admin/wallets/{people.patient.id}", data=form("12000"))
    r = client.post(f"/admin/wallets/{people.patient.id}", data=form("650"))
    assert r.status_code == 303
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert (
        "₹12,650 credited or debited to this patient by you in 24 hours, including ₹12,000"
        " still waiting for approval; above ₹10,000 a second administrator must approve it."
    ) in page
