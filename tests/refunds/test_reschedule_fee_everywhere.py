"""A paid reschedule fee wherever its visit is shown (review rev_ux s15/s16 follow-up): the
admin's visit page and the patient's confirmation page list it as the visit page does
(amount, GST, document number, how paid, refund state) from the same query, in a fixed
number of statements; a fee given back names the GST credit note its refund issued; a
fee paid at the desk shows as such everywhere and in the GST report; and My visits states
refunds processed and refunds on their way apart."""

import re

import sqlalchemy as sa
from flask_babel import refresh

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.booking import reschedule_payment
from portal.booking.credit_notes import CreditNote
from portal.booking.models import PAY_DESK, IndividualBooking, MasterBooking, Reschedule
from portal.db import unit_of_work
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerTransaction
from portal.ledger.service import entries_for
from portal.refunds.models import Refund
from portal.refunds.queries import visit_fees
from portal.reports import gst
from tests.booking.factories import at, credit_wallet
from tests.querycount import counted_queries
from tests.refunds.helpers import (
    block,
    booked_consult,
    cancel_as_patient,
    hours,
    login,
    post_move,
    quoted_admin_cancel,
    quoted_move,
    settle_refunds,
)

START, NEW, LATER = at(4, 10), at(7, 11), at(8, 11)
FEE_10 = 5_000 + 250 + 945  # ₹61.95: 10 % penalty, 5 % platform fee on it, 18 % GST on both


def _wallet_move(client, item_id, new):
    moved = post_move(
        client,
        f"/me/bookings/{item_id}/reschedule",
        {"slot": new.isoformat(), "pay_with": "wallet"},
    )
    assert moved.status_code == 303


def test_the_admin_page_and_the_confirmation_list_the_fees_in_fixed_statements(
    app, client, world, users, gateway, clock
):
    visit_id, item_id, invoice_no, email = booked_consult(world, users, gateway, START)
    admin_email = users(world.admin).email
    credit_wallet(world.patients[0], 20_000)

    def statements(who):
        login(client, who)
        counts = []
        for url in (f"/admin/visits/{visit_id}", f"/me/visits/{visit_id}/confirmation"):
            if url.startswith("/me") != (who == email):
                continue
            client.get(url)  # warm
            with counted_queries() as seen:
                assert client.get(url).status_code == 200
            counts.append(len(seen))
        return counts

    login(client, email)
    clock.move_to(START - hours(60))
    _wallet_move(client, item_id, NEW)
    one = statements(admin_email) + statements(email)
    fee = db.session.scalars(sa.select(Reschedule)).one()
    document = fee.document_no

    login(client, admin_email)
    page = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    row = block(page, f"fee-{fee.id}")
    assert document in row and "₹61.95" in row and "₹9.45" in row  # total and its GST
    assert "From your wallet" in row and "Refund" not in row.replace("<th>Refund</th>", "")
    assert 'id="amount-fees">₹61.95<' in page and 'id="amount-paid">₹529.50<' in page

    login(client, email)
    page = client.get(f"/me/visits/{visit_id}/confirmation").get_data(as_text=True)
    row = block(page, f"fee-{fee.id}")
    assert document in row and "₹61.95" in row and "From your wallet" in row

    # A second fee: the same number of statements (one query for all of them).
    clock.move_to(NEW - hours(60))
    _wallet_move(client, item_id, LATER)
    assert statements(admin_email) + statements(email) == one
    page = client.get(f"/me/visits/{visit_id}/confirmation").get_data(as_text=True)
    assert len(re.findall(r'id="fee-\d+"', page)) == 2


def test_a_refunded_fee_names_its_credit_note_as_the_gst_report_does(
    app, client, world, users, gateway, clock
):
    visit_id, item_id, invoice_no, email = booked_consult(world, users, gateway, START)
    admin_email = users(world.admin).email
    credit_wallet(world.patients[0], 10_000)
    login(client, email)
    clock.move_to(START - hours(60))
    _wallet_move(client, item_id, NEW)
    fee = db.session.scalars(sa.select(Reschedule)).one()
    quoted_admin_cancel(
        users(world.admin), item_id, "Clinic closed for a fumigation", mode="clinic"
    )
    note = db.session.scalars(sa.select(CreditNote).where(CreditNote.reschedule_id == fee.id)).one()
    assert note.gst == fee.gst and note.reason == "reschedule_fee_refund"
    report = gst.report(gst.parse({"month": "2026-06"}))
    numbers = [row.doc_no for row, _tax in report.documents if row.doc_type == gst.CREDIT_NOTE]
    assert note.number in numbers  # the fee's GST reversed in the report

    # The fee came back to the wallet (processed); the visit's own refund is on its way to
    # the card. Each is said apart, and the fee is in neither of the visit's figures.
    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    line = block(page, f"fee-{fee.id}")
    assert "Refunded" in line and "Refund on its way" not in line and note.number in line
    assert 'id="amount-fees-refunded">−₹61.95<' in page
    assert 'id="amount-fees-refund-pending"' not in page
    assert 'id="amount-refund-pending">−₹529.50<' in page and 'id="amount-refunded"' not in page
    mine = block(client.get("/me/visits").get_data(as_text=True), f"visit-{visit_id}")
    assert f'id="visit-refund-pending-{visit_id}">−₹529.50<' in mine
    assert f"visit-refunded-{visit_id}" not in mine and "₹61.95" not in mine
    receipt = client.get(f"/me/visits/{visit_id}/receipt").get_data(as_text=True)
    assert note.number in block(receipt, f"fee-document-{fee.id}", "section")
    client.post("/language", data={"language": "hi", "next": "/me/visits"})
    refresh()
    hindi = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    assert f"क्रेडिट नोट {note.number}" in block(hindi, f"fee-{fee.id}")

    login(client, admin_email)
    page = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    row = block(page, f"fee-{fee.id}")
    assert "Refunded" in row and note.number in row and fee.document_no in row
    assert 'id="amount-fees-refunded">−₹61.95<' in page
    assert 'id="amount-fees-refund-pending"' not in page

    # The card's refund arrives: My visits moves it from "on its way" to "Refunded", and
    # the fee, refunded already, is still not in it.
    settle_refunds(gateway)
    login(client, email)
    mine = block(client.get("/me/visits").get_data(as_text=True), f"visit-{visit_id}")
    assert f'id="visit-refunded-{visit_id}">−₹529.50<' in mine
    assert f"visit-refund-pending-{visit_id}" not in mine and "₹61.95" not in mine
    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    assert 'id="amount-refunded">−₹529.50<' in page and 'id="amount-refund-pending"' not in page
    assert 'id="amount-fees-refunded">−₹61.95<' in page


def test_a_refunded_fees_credit_note_cites_the_fee_document_it_reverses(
    app, client, world, users, gateway, clock
):
    """A reschedule fee is a tax invoice of its own (RF/...): the credit note reversing its
    GST cites that document, in the note, the GST report's "Against invoice" column and the
    receipt's list of notes; it cited the visit's CP/ invoice (review finding). The visit's
    own note still cites the visit's invoice."""
    visit_id, item_id, invoice_no, email = booked_consult(world, users, gateway, START)
    credit_wallet(world.patients[0], 10_000)
    login(client, email)
    clock.move_to(START - hours(60))
    _wallet_move(client, item_id, NEW)
    fee = db.session.scalars(sa.select(Reschedule)).one()
    assert fee.document_no.startswith("RF/")
    quoted_admin_cancel(
        users(world.admin), item_id, "Clinic closed for a fumigation", mode="clinic"
    )
    notes = db.session.scalars(sa.select(CreditNote).order_by(CreditNote.id)).all()
    cited = {n.reschedule_id: n.invoice_no for n in notes}
    assert cited == {None: invoice_no, fee.id: fee.document_no}
    report = gst.report(gst.parse({"month": "2026-06"}))
    against = {
        r.doc_no: r.invoice_no for r, _t in report.documents if r.doc_type == gst.CREDIT_NOTE
    }
    assert against == {n.number: n.invoice_no for n in notes}
    receipt = client.get(f"/me/visits/{visit_id}/receipt").get_data(as_text=True)
    for note in notes:
        assert note.invoice_no in block(receipt, f"credit-note-{note.id}")


def test_a_capture_sent_back_for_a_closed_account_is_not_the_fee_refunded(
    app, client, world, users, gateway, clock
):
    """A second payment on a paid fee's order, captured once the account is closed, is
    sent back naming the reschedule (``refunds.unapplied``). It was never the fee: no GST
    on it, so no credit note, and the GST report is right. But the visit called the fee
    "Refunded" (with no credit note: review), and a later cancellation by the clinic did
    not give the fee back, as if it had been."""
    visit_id, item_id, _invoice_no, _email = booked_consult(world, users, gateway, START)
    admin_email = users(world.admin).email
    clock.move_to(START - hours(60))
    patient = db.session.get(User, world.patients[0])
    result = quoted_move(
        patient, item_id, NEW, pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    )
    fee_id, order = result.reschedule.id, result.reschedule.razorpay_order_id
    reschedule_payment.complete_callback(gateway.pay(order))
    gateway.deliver()
    with unit_of_work():
        accounts.close_own_account(db.session.get(User, world.patients[0]))
    reschedule_payment.payment_captured(fee_id, "pay_SecondOnOrder01", FEE_10)
    sent_back = db.session.scalars(sa.select(Refund).where(Refund.reschedule_id == fee_id)).one()
    assert sent_back.cancellation_id is None  # the capture's refund, not the fee's
    assert db.session.scalar(sa.select(sa.func.count(CreditNote.id))) == 0

    login(client, admin_email)
    row = block(client.get(f"/admin/visits/{visit_id}").get_data(as_text=True), f"fee-{fee_id}")
    assert "Refunded" not in row and "Refund on its way" not in row

    # The clinic cancels: the fee itself is given back, with its credit note.
    quoted_admin_cancel(
        users(world.admin), item_id, "Clinic closed for a fumigation", mode="clinic"
    )
    given = db.session.scalars(
        sa.select(Refund).where(Refund.reschedule_id == fee_id, Refund.cancellation_id.is_not(None))
    ).all()
    assert [r.amount for r in given] == [FEE_10]
    note = db.session.scalars(sa.select(CreditNote).where(CreditNote.reschedule_id == fee_id)).one()
    row = block(client.get(f"/admin/visits/{visit_id}").get_data(as_text=True), f"fee-{fee_id}")
    assert note.number in row


def test_a_fee_paid_at_the_desk_shows_everywhere_and_is_one_balanced_posting(
    app, client, world, users, gateway, clock
):
    visit_id, item_id, invoice_no, email = booked_consult(world, users, gateway, START)
    admin_email = users(world.admin).email
    clock.move_to(START - hours(60))
    login(client, admin_email)
    moved = post_move(
        client,
        f"/admin/bookings/{item_id}/reschedule",
        {"slot": NEW.isoformat(), "pay_with": "desk", "receipt_no": "DESK-0042"},
    )
    assert moved.status_code == 303
    fee = db.session.scalars(sa.select(Reschedule)).one()
    assert (fee.pay_with, fee.total, fee.receipt_no) == (PAY_DESK, FEE_10, "DESK-0042")
    document = fee.document_no

    # One ledger transaction, balanced, the desk's cash in and the GST payable.
    (txn,) = [t for t in entries_for("reschedule", fee.id) if t.kind == "reschedule_fee"]
    assert sum(e.amount for e in txn.entries) == 0
    amounts = {e.account.code: e.amount for e in txn.entries}
    assert amounts[chart.CASH_DESK] == FEE_10 and amounts[chart.GST_PAYABLE] == -fee.gst
    assert (
        db.session.scalar(
            sa.select(sa.func.count(LedgerTransaction.id)).where(
                LedgerTransaction.reference_type == "reschedule"
            )
        )
        == 1
    )

    page = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    row = block(page, f"fee-{fee.id}")
    assert document in row and "Paid at the clinic" in row and "DESK-0042" in row
    assert "₹52.50" in row  # its taxable value (fee + platform fee), as the GST report's

    login(client, email)
    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    line = block(page, f"fee-{fee.id}")
    assert document in line and "Paid at the clinic" in line and "₹61.95" in line
    assert 'id="amount-fees">₹61.95<' in page and 'id="amount-paid">₹529.50<' in page
    receipt = client.get(f"/me/visits/{visit_id}/receipt").get_data(as_text=True)
    section = block(receipt, f"fee-document-{fee.id}", "section")
    assert document in section and "Paid at the clinic" in section and "DESK-0042" in section
    client.post("/language", data={"language": "hi", "next": "/me/visits"})
    refresh()
    hindi = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    assert "Paid at the clinic" not in block(hindi, f"fee-{fee.id}")

    report = gst.report(gst.parse({"month": "2026-06"}))
    (row, _split) = next((r, s) for r, s in report.documents if r.doc_type == gst.RESCHEDULE_FEE)
    assert row.doc_no == document and int(row.gst) == fee.gst
    assert int(row.taxable) == fee.penalty + fee.platform_fee
    [paid] = visit_fees(db.session.get(MasterBooking, visit_id)).rows
    assert paid.taxable == int(row.taxable) == 5_000 + 250


def test_my_visits_states_refunds_processed_and_on_their_way_apart(
    app, client, world, users, gateway, clock
):
    """ "Refunded" on My visits was what was processed and what was still at the gateway
    together; now each is said, and the kept row changes when the refund arrives."""
    visit_id, item_id, _invoice_no, email = booked_consult(world, users, gateway, START)
    clock.move_to(START - hours(60))  # a full refund, to the card: pending at first
    login(client, email)
    assert cancel_as_patient(client, visit_id, [item_id]).status_code == 303
    assert db.session.scalars(sa.select(Refund.status)).all() == ["PENDING"]

    def row():
        client.get("/me/visits")  # warm
        with counted_queries() as seen:
            html = client.get("/me/visits").get_data(as_text=True)
        return block(html, f"visit-{visit_id}"), len(seen)

    pending, statements = row()
    assert f'id="visit-refund-pending-{visit_id}">−₹529.50<' in pending
    assert "Refund on its way" in pending and f"visit-refunded-{visit_id}" not in pending
    client.post("/language", data={"language": "hi", "next": "/me/visits"})
    refresh()
    hindi = client.get("/me/visits").get_data(as_text=True)
    assert "रिफ़ंड रास्ते में है" in block(hindi, f"visit-{visit_id}")
    client.post("/language", data={"language": "en", "next": "/me/visits"})
    refresh()
    settle_refunds(gateway)
    assert db.session.scalars(sa.select(Refund.status)).all() == ["PROCESSED"]
    done, again = row()
    assert f'id="visit-refunded-{visit_id}">−₹529.50<' in done
    assert "Refund on its way" not in done and again == statements
    client.post("/language", data={"language": "hi", "next": "/me/visits"})
    refresh()
    hindi = client.get("/me/visits").get_data(as_text=True)
    assert "रिफ़ंड किया गया" in block(hindi, f"visit-{visit_id}")


def test_my_visits_reads_the_refund_split_with_the_items(app, client, world, users, gateway, clock):
    """The same statements with refunds as without (the split is read with the items)."""
    visit_id, item_id, _invoice_no, email = booked_consult(world, users, gateway, START)
    login(client, email)

    def statements():
        client.get("/me/visits")
        with counted_queries() as seen:
            assert client.get("/me/visits").status_code == 200
        return len(seen)

    before = statements()
    clock.move_to(START - hours(30))  # part kept, part to the wallet
    assert cancel_as_patient(client, visit_id, [item_id], destination="wallet").status_code == 303
    assert statements() == before
    assert db.session.get(MasterBooking, visit_id).items[0].refunded_amount
    assert db.session.get(IndividualBooking, item_id).status == "CANCELLED"


def test_a_failed_refund_is_on_its_way_on_the_visit_page_as_on_my_visits(
    app, client, world, users, gateway, clock
):
    """A gateway refund that failed (retried, or sent to the wallet by an admin) is still
    owed: My visits says "Refund on its way", and so does the visit page, which counted it
    neither refunded nor on its way (the money vanished from its summary)."""
    visit_id, item_id, _invoice_no, email = booked_consult(world, users, gateway, START)
    gateway.sandbox.set_faults(refund_outcome="failed")
    clock.move_to(START - hours(60))
    login(client, email)
    assert cancel_as_patient(client, visit_id, [item_id]).status_code == 303
    for _ in range(3):  # every attempt fails (REFUND_MAX_ATTEMPTS): an admin's to decide
        settle_refunds(gateway, 24 * 3600)
    live = sa.select(Refund.status).where(Refund.superseded.is_(False))
    assert db.session.scalars(live).all() == ["FAILED"]
    row = block(client.get("/me/visits").get_data(as_text=True), f"visit-{visit_id}")
    assert f'id="visit-refund-pending-{visit_id}">−₹529.50<' in row
    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    assert 'id="amount-refund-pending">−₹529.50<' in page
