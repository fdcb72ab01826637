"""The admin's bank-transfer pay-out form on a patient's wallet page: admins only (403),
an unknown wallet a 404, bad input a 422 with its message and nothing written, a double
submit one pay-out, above the limit through the approvals queue ("Approve the bank
transfer of ₹…"), the adjustment's page, and the patient's history with the UTR (English
and Hindi)."""

import json

import pytest
import sqlalchemy as sa
from markupsafe import escape

from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.wallet import adjustments as adj
from portal.wallet import bank
from portal.wallet.models import BANK_PAYOUT, WalletAdjustment
from portal.web.forms import wallet as forms
from tests.transactions.csv_file import read
from tests.wallet.test_cash_payout_web import fund

NOTE = "Closing balance sent by NEFT to the patient's account"
UTR = "SBIN226012345678"


def form(amount, note=NOTE, utr=UTR, **extra):
    return {"bank-amount": amount, "bank-note": note, "bank-utr": utr, **extra}


def payouts(app):
    with app.app_context():
        return db.session.scalars(
            sa.select(WalletAdjustment).where(WalletAdjustment.kind == BANK_PAYOUT)
        ).all()


def url(patient_id):
    return f"/admin/wallets/{patient_id}/bank"


def test_the_wallet_page_has_the_form_and_only_admins_may_use_it(app, client, login, people):
    fund(app, people, 100_00)
    for who in (people.patient, people.doctor):
        login(who)
        assert client.post(url(people.patient.id), data=form("100")).status_code == 403
        client.post("/auth/logout")
    login(people.admin)
    page = client.get(f"/admin/wallets/{people.patient.id}").get_data(as_text=True)
    assert 'id="bank-payout-form"' in page and 'name="bank-utr"' in page
    assert 'id="cash-payout-form"' in page and 'id="adjustment-form"' in page
    assert payouts(app) == []


def test_an_unknown_wallet_is_a_404(client, login, people):
    login(people.admin)
    assert client.post(url(999_999), data=form("1")).status_code == 404
    assert client.post(url(people.doctor.id), data=form("1")).status_code == 404


@pytest.mark.parametrize(
    "data, message",
    [
        (form(""), forms.MSG_EMPTY),
        (form("0"), forms.MSG_ZERO),
        (form("-5"), forms.MSG_SIGN_BANK),
        (form("1.001"), forms.MSG_DECIMALS),
        (form("ten"), "rupees"),
        (form("1e4"), "rupees"),
        (form("100.01"), bank.MSG_MORE_THAN_BALANCE),
        (form("100", note="short"), adj.MSG_NOTE.format(n=10)),
        (form("100", utr=""), bank.MSG_UTR),
        (form("100", utr="12345"), bank.MSG_UTR_FORMAT),
        (form("100", utr="SBIN/2260/12345678"), bank.MSG_UTR_FORMAT),
        (form("100", utr="X" * 200), bank.MSG_UTR_FORMAT),
    ],
)
def test_bad_input_is_a_422_with_its_message_and_nothing_written(
    app, client, login, people, data, message
):
    fund(app, people, 100_00)
    login(people.admin)
    r = client.post(url(people.patient.id), data=data)
    assert r.status_code == 422
    assert str(escape(message)) in r.get_data(as_text=True)
    assert payouts(app) == []
    with app.app_context():
        assert balance(chart.patient_wallet(people.patient.id)) == 100_00


def test_a_utr_already_recorded_is_a_422(app, client, login, people):
    fund(app, people, 500_00)
    login(people.admin)
    assert client.post(url(people.patient.id), data=form("100")).status_code == 303
    r = client.post(url(people.patient.id), data=form("100"))
    assert r.status_code == 422 and "already recorded" in r.get_data(as_text=True)
    assert len(payouts(app)) == 1


def test_the_same_form_sent_twice_pays_out_once(app, client, login, people):
    fund(app, people, 500_00)
    login(people.admin)
    first = client.post(url(people.patient.id), data=form("200", **{"bank-token": "t-1"}))
    again = client.post(url(people.patient.id), data=form("200", **{"bank-token": "t-1"}))
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    assert [p.amount for p in payouts(app)] == [-200_00]


def test_above_the_limit_a_second_admin_approves_from_the_queue(
    app, client, login, people, make_user
):
    fund(app, people, 9_000_00)
    fund(app, people, 9_000_00, make_user("admin", email="third@example.com", name="Third"))
    login(people.admin)
    r = client.post(url(people.patient.id), data=form("12000"))
    assert r.status_code == 303
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert adj.MSG_APPROVAL in page and "Pending approval" in page and UTR in page
    assert "Bank transfer of ₹12,000" in page
    [waiting] = payouts(app)
    client.post("/auth/logout")
    login(people.admin2)
    queue = client.get("/admin/approvals").get_data(as_text=True)
    assert "Approve the bank transfer of ₹12,000" in queue and f"UTR {UTR}" in queue
    r = client.post(
        f"/admin/approvals/wallet_adjustment/{waiting.id}/approve",
        data={"note": "Bank advice seen"},
        follow_redirects=True,
    )
    assert "Approved." in r.get_data(as_text=True)
    with app.app_context():
        assert balance(chart.patient_wallet(people.patient.id)) == 6_000_00


def test_the_patient_sees_it_with_the_utr_in_english_and_hindi(app, client, login, people):
    fund(app, people, 500_00)
    login(people.admin)
    r = client.post(url(people.patient.id), data=form("500", utr="sbin2260 12345678"))
    assert r.status_code == 303
    assert "Applied: the balance went from ₹500 to ₹0." in client.get(
        r.headers["Location"]
    ).get_data(as_text=True)
    client.post("/auth/logout")
    login(people.patient)
    page = client.get("/me/wallet").get_data(as_text=True)
    assert "Paid to your bank account" in page and f"Bank reference (UTR): {UTR}" in page
    assert NOTE not in page  # the internal note stays internal
    client.post("/language", data={"language": "hi", "next": "/"})
    hindi = client.get("/me/wallet").get_data(as_text=True)
    assert "आपके बैंक खाते में भेजा गया" in hindi
    assert f"बैंक संदर्भ (UTR): {UTR}" in hindi
    assert "Paid to your bank account" not in hindi


def test_the_console_and_its_csv_show_the_payouts_with_their_references(app, client, login, people):
    """The console lists a bank pay-out as its own type with its UTR, counts it as bank
    out in the summary and the net, and so does the CSV; a cash pay-out's row shows its
    desk receipt (it showed "—")."""
    fund(app, people, 800_00)
    login(people.admin)
    assert client.post(url(people.patient.id), data=form("500")).status_code == 303
    cash = {"cash-amount": "200", "cash-note": NOTE, "cash-receipt_no": "D-0042"}
    assert client.post(f"/admin/wallets/{people.patient.id}/cash", data=cash).status_code == 303
    page = client.get("/admin/transactions?preset=today").get_data(as_text=True)
    assert "Bank transfer paid out" in page and f"<code>{UTR}</code>" in page
    assert "Cash paid out (desk)" in page and "<code>D-0042</code>" in page
    sums = client.get(
        "/admin/transactions/summary?preset=today", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert 'data-sum="bank_out">₹500<' in sums and 'data-sum="cash_out">₹200<' in sums
    assert 'data-sum="net">−₹700<' in sums
    only = client.get("/admin/transactions?preset=today&type=bank_payout").get_data(as_text=True)
    assert UTR in only and "D-0042" not in only
    f = read(client.get("/admin/transactions.csv?preset=today").get_data(as_text=True))
    assert f.summary["Bank transfers paid out"] == "500.00"
    assert f.summary["Net cash received"] == "-700.00"
    header, body = f.header, f.rows
    by_type = {row[header.index("Type")]: row for row in body}
    assert by_type["bank_payout"][header.index("Gateway reference")] == UTR
    assert by_type["bank_payout"][header.index("Net")] == "-500.00"
    assert by_type["cash_payout"][header.index("Gateway reference")] == "D-0042"


def test_the_download_has_the_bank_payouts_utr_and_names_movements_as_the_page_does(
    app, client, login, people
):
    """Review rv_privacy: the wallet page says "Paid to your bank account · Bank reference
    (UTR): …" and "Adjustment by the clinic · Goodwill"; the download listed the same lines
    by the ledger's stored kinds alone ("wallet_bank_payout"), with neither the UTR nor the
    public reason, so the patient could not match the transfer to their bank statement."""
    fund(app, people, 800_00)
    login(people.admin)
    assert client.post(url(people.patient.id), data=form("500")).status_code == 303
    client.post("/auth/logout")
    login(people.patient)
    page = client.get("/me/wallet").get_data(as_text=True)
    assert f"Bank reference (UTR): {UTR}" in page and "Goodwill" in page
    document = json.loads(client.get("/me/account/data.json").get_data(as_text=True))
    lines = document["wallet"]["transactions"]
    assert [line["change"] for line in lines] == ["800.00", "-500.00"]
    said = [
        (line["kind"], line["what"], line["reason"], line["bank_reference_utr"]) for line in lines
    ]
    assert said == [
        ("wallet_adjustment", "Adjustment by the clinic", "Goodwill", None),
        ("wallet_bank_payout", "Paid to your bank account", None, UTR),
    ]
    text = json.dumps(document)
    assert NOTE not in text and "Goodwill credit after a billing mistake" not in text  # internal
