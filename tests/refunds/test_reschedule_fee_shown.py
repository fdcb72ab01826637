"""A paid reschedule fee where the patient looks for it (review rev_ux s15/s16/s43): on the
visit page's money and payments (when, how much, paid how, which appointment moved), on the
receipt as its own tax document (``<invoice>/R<id>``, as the GST report names it), and on
the wallet's line, which names the visit. And "My visits" states what the visit page
states: paid for the appointments and refunded (a cancelled visit showed ₹0 there)."""

import re

import sqlalchemy as sa
from flask_babel import refresh

from portal.accounts.models import User
from portal.booking import reschedule_payment
from portal.booking.models import IndividualBooking, MasterBooking, Reschedule
from portal.extensions import db
from portal.refunds.models import Refund
from tests.booking.factories import at, credit_wallet
from tests.querycount import counted_queries
from tests.refunds.helpers import (
    block,
    booked_consult,
    cancel_as_patient,
    hours,
    login,
    post_move,
    quoted_move,
    quoted_provider_cancel,
    settle_refunds,
)

START, NEW = at(4, 10), at(7, 11)
FEE_10 = 5_000 + 250 + 945  # ₹61.95: 10 % penalty, 5 % platform fee on it, 18 % GST on both


def test_a_fee_paid_from_the_wallet_shows_on_the_visit_the_receipt_and_the_wallet(
    app, client, world, users, gateway, clock
):
    visit_id, item_id, invoice_no, email = booked_consult(world, users, gateway, START)
    clock.move_to(START - hours(50))
    credit_wallet(world.patients[0], 10_000)
    login(client, email)
    moved = post_move(
        client,
        f"/me/bookings/{item_id}/reschedule",
        {"slot": NEW.isoformat(), "pay_with": "wallet"},
    )
    assert moved.status_code == 303
    fee = db.session.scalars(sa.select(Reschedule)).one()
    assert (fee.status, fee.total) == ("DONE", FEE_10)
    number = db.session.get(MasterBooking, visit_id).number

    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    # "Paid" keeps its meaning (the appointments); the fee is a figure of its own.
    assert 'id="amount-paid">₹529.50<' in page
    assert 'id="amount-fees">₹61.95<' in page
    line = block(page, f"fee-{fee.id}")
    assert "₹61.95" in line and "From your wallet" in line and "Consultation" in line
    assert fee.document_no in line and fee.document_no.startswith("RF/")

    receipt = client.get(f"/me/visits/{visit_id}/receipt").get_data(as_text=True)
    document = block(receipt, f"fee-document-{fee.id}", "section")
    assert f"Tax invoice {fee.document_no}: reschedule fee" in document
    assert "Against invoice" in document and invoice_no in document
    assert "₹50.00" in document and "₹2.50" in document and "₹61.95" in document
    if fee.igst:
        assert f"₹{fee.igst / 100:.2f}" in document
    else:
        assert f"₹{fee.cgst / 100:.2f}" in document and f"₹{fee.sgst / 100:.2f}" in document

    wallet = client.get("/me/wallet").get_data(as_text=True)
    row = re.search(r"<tr>(?:(?!</tr>).)*Reschedule fee(?:(?!</tr>).)*</tr>", wallet, re.S)
    assert row and "−₹61.95" in row.group(0)
    assert number in row.group(0) and f'href="/me/visits/{visit_id}"' in row.group(0)
    client.post("/language", data={"language": "hi", "next": "/me/wallet"})
    refresh()
    hindi = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    assert "अपॉइंटमेंट के लिए चुकाया गया" in hindi and "समय बदलने के चुकाए गए शुल्क" in hindi
    hindi = client.get(f"/me/visits/{visit_id}/receipt").get_data(as_text=True)
    assert "समय बदलने का शुल्क" in block(hindi, f"fee-document-{fee.id}", "section")


def test_a_fee_paid_online_then_given_back_shows_as_refunded(
    app, client, world, users, gateway, clock
):
    visit_id, item_id, invoice_no, email = booked_consult(world, users, gateway, START)
    clock.move_to(START - hours(60))
    patient = users(world.patients[0])
    result = quoted_move(
        patient, item_id, NEW, pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    )
    reschedule_payment.complete_callback(gateway.pay(result.reschedule.razorpay_order_id))
    gateway.deliver()
    fee_id = result.reschedule.id
    db.session.remove()
    login(client, email)
    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    line = block(page, f"fee-{fee_id}")
    assert "₹61.95" in line and "Paid online" in line and "refund" not in line.lower()
    receipt = client.get(f"/me/visits/{visit_id}/receipt").get_data(as_text=True)
    document = block(receipt, f"fee-document-{fee_id}", "section")
    assert db.session.get(Reschedule, fee_id).document_no in document
    assert invoice_no in document

    # The clinic's side cancels: the fee is given back (refunds.md "Reschedule fees").
    doctor = db.session.get(User, db.session.get(IndividualBooking, item_id).providers[0].user_id)
    quoted_provider_cancel(doctor, item_id, "Called to surgery")
    # On its way to the card first: said so, and not yet "Refunded".
    assert db.session.scalars(
        sa.select(Refund.status).where(Refund.reschedule_id == fee_id)
    ).all() == ["PENDING"]
    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    line = block(page, f"fee-{fee_id}")
    assert "Refund on its way" in line and "Refunded" not in line
    assert 'id="amount-fees-refund-pending">−₹61.95<' in page
    assert 'id="amount-fees-refunded"' not in page
    settle_refunds(gateway)
    assert db.session.scalars(
        sa.select(Refund.status).where(Refund.reschedule_id == fee_id)
    ).all() == ["PROCESSED"]
    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    line = block(page, f"fee-{fee_id}")
    assert "Refunded" in line and "Refund on its way" not in line
    assert 'id="amount-fees-refunded">−₹61.95<' in page
    assert 'id="amount-fees-refund-pending"' not in page
    receipt = client.get(f"/me/visits/{visit_id}/receipt").get_data(as_text=True)
    assert "Refunded" in block(receipt, f"fee-document-{fee_id}", "section")


def test_my_visits_states_what_the_visit_page_states_for_a_cancelled_visit(
    app, client, world, users, gateway, clock
):
    visit_id, item_id, _invoice_no, email = booked_consult(world, users, gateway, START)
    clock.move_to(START - hours(30))  # 75 % less ₹100 back: part of the money is kept
    login(client, email)
    assert cancel_as_patient(client, visit_id, [item_id], destination="wallet").status_code == 303
    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    paid = re.search(r'id="amount-paid">(₹[\d,.]+)<', page).group(1)
    refunded = re.search(r'id="amount-refunded">−(₹[\d,.]+)<', page).group(1)
    assert (paid, refunded) == ("₹529.50", "₹297.13")  # 75 % of ₹529.50, less ₹100
    row = block(client.get("/me/visits").get_data(as_text=True), f"visit-{visit_id}")
    assert f'id="visit-paid-{visit_id}">{paid}<' in row
    assert f'id="visit-refunded-{visit_id}">−{refunded}<' in row
    client.post("/language", data={"language": "hi", "next": "/me/visits"})
    refresh()  # the test's app context outlives the requests
    hindi = client.get("/me/visits").get_data(as_text=True)
    assert "चुकाया गया" in hindi and "रिफ़ंड किया गया" in block(hindi, f"visit-{visit_id}")


def test_the_visit_page_and_receipt_read_the_fees_in_one_statement_however_many(
    app, client, world, users, gateway, clock
):
    """No statement per fee: the page and the receipt cost the same with no fee, one or
    two (``refunds.queries.visit_fees``: one statement, run once the visit is paid)."""
    visit_id, item_id, _invoice_no, email = booked_consult(world, users, gateway, START)
    credit_wallet(world.patients[0], 20_000)
    login(client, email)

    def statements():
        counts = []
        for url in (f"/me/visits/{visit_id}", f"/me/visits/{visit_id}/receipt", "/me/wallet"):
            client.get(url)  # warm
            with counted_queries() as seen:
                assert client.get(url).status_code == 200
            counts.append(len(seen))
        return counts

    before = statements()
    for start, new in ((START, NEW), (NEW, at(8, 11))):
        clock.move_to(start - hours(60))
        url = f"/me/bookings/{item_id}/reschedule"
        moved = post_move(client, url, {"slot": new.isoformat(), "pay_with": "wallet"})
        assert moved.status_code == 303
    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    assert len(re.findall(r'id="fee-\d+"', page)) == 2 and 'id="amount-fees">₹123.90<' in page
    # The wallet names the visit with one statement more for the whole page.
    assert statements() == [before[0], before[1], before[2] + 1]
