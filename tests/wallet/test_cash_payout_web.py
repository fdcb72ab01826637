"""The admin's cash pay-out form on a patient's wallet page: CSRF, admins only, bad input
a 422 with its message and nothing written, above the limit through the approvals queue,
and the patient's history (English and Hindi)."""

import re

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.wallet import adjustments as adj
from portal.wallet import cash
from portal.wallet.models import CASH_PAYOUT, WalletAdjustment
from portal.web.forms import wallet as forms
from tests.wallet.conftest import fresh

NOTE = "Closing balance handed over in cash"


def form(amount, note=NOTE, receipt="D-0042", **extra):
    return {"cash-amount": amount, "cash-note": note, "cash-receipt_no": receipt, **extra}


def fund(app, people, paise, admin=None):
    with app.app_context():
        adj.create_adjustment(
            fresh(admin or people.admin2),
            people.patient.id,
            adj.CREDIT,
            paise,
            "Goodwill credit after a billing mistake",
            "Goodwill",
        )


def payouts(app):
    with app.app_context():
        return db.session.scalars(
            sa.select(WalletAdjustment).where(WalletAdjustment.kind == CASH_PAYOUT)
        ).all()


def url(people):
    return f"/admin/wallets/{people.patient.id}/cash"


def test_the_wallet_page_has_the_form_and_only_admins_may_use_it(app, client, login, people):
    fund(app, people, 100_00)
    for who in (people.patient, people.doctor):
        login(who)
        assert client.post(url(people), data=form("100")).status_code == 403
        client.post("/auth/logout")
    login(people.admin)
    page = client.get(f"/admin/wallets/{people.patient.id}").get_data(as_text=True)
    assert 'id="cash-payout-form"' in page and 'name="cash-receipt_no"' in page
    assert payouts(app) == []


def test_the_form_needs_its_csrf_token(app, client, login, people, monkeypatch):
    fund(app, people, 100_00)
    login(people.admin)
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    assert client.post(url(people), data=form("100")).status_code == 400
    page = client.get(f"/admin/wallets/{people.patient.id}").get_data(as_text=True)
    token = re.search(r'name="cash-csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    r = client.post(url(people), data=form("100", **{"cash-csrf_token": token}))
    assert r.status_code == 303
    assert [p.amount for p in payouts(app)] == [-100_00]


@pytest.mark.parametrize(
    "data, message",
    [
        (form(""), forms.MSG_EMPTY),
        (form("0"), forms.MSG_ZERO),
        (form("-5"), forms.MSG_SIGN_CASH),
        (form("1.001"), forms.MSG_DECIMALS),
        (form("ten"), "rupees"),
        (form("100.01"), cash.MSG_MORE_THAN_BALANCE),
        (form("100", note="short"), adj.MSG_NOTE.format(n=10)),
        (form("100", receipt=""), cash.MSG_RECEIPT),
        (form("100", receipt="R" * 65), "at most 64 characters"),
    ],
)
def test_bad_input_is_a_422_with_its_message_and_nothing_written(
    app, client, login, people, data, message
):
    fund(app, people, 100_00)
    login(people.admin)
    r = client.post(url(people), data=data)
    assert r.status_code == 422
    assert message in r.get_data(as_text=True)
    assert payouts(app) == []
    with app.app_context():
        assert balance(chart.patient_wallet(people.patient.id)) == 100_00


def test_not_a_patient_is_a_404(client, login, people):
    login(people.admin)
    assert client.post(f"/admin/wallets/{people.doctor.id}/cash", data=form("1")).status_code == 404


def test_above_the_limit_a_second_admin_approves_from_the_queue(
    app, client, login, people, make_user
):
    fund(app, people, 9_000_00)
    fund(app, people, 9_000_00, make_user("admin", email="third@example.com", name="Third"))
    login(people.admin)
    r = client.post(url(people), data=form("12000"))
    assert r.status_code == 303
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert adj.MSG_APPROVAL in page and "Pending approval" in page and "D-0042" in page
    [waiting] = payouts(app)
    client.post("/auth/logout")
    login(people.admin2)
    queue = client.get("/admin/approvals").get_data(as_text=True)
    assert "Approve the cash pay-out of ₹12,000" in queue
    r = client.post(
        f"/admin/approvals/wallet_adjustment/{waiting.id}/approve",
        data={"note": "Receipt seen"},
        follow_redirects=True,
    )
    assert "Approved." in r.get_data(as_text=True)
    with app.app_context():
        assert balance(chart.patient_wallet(people.patient.id)) == 6_000_00


def test_the_patient_sees_it_in_their_history_in_english_and_hindi(app, client, login, people):
    fund(app, people, 500_00)
    login(people.admin)
    r = client.post(url(people), data=form("500"))
    assert r.status_code == 303
    assert "Applied: the balance went from ₹500 to ₹0." in client.get(
        r.headers["Location"]
    ).get_data(as_text=True)
    client.post("/auth/logout")
    login(people.patient)
    page = client.get("/me/wallet").get_data(as_text=True)
    assert "Paid to you in cash at the desk" in page
    assert NOTE not in page  # the internal note stays internal
    client.post("/language", data={"language": "hi", "next": "/"})
    hindi = client.get("/me/wallet").get_data(as_text=True)
    assert "क्लिनिक के काउंटर पर आपको नकद दिया गया" in hindi
