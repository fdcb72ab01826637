"""The patient's data download lists the reschedule fees they paid (review: "Download my
data" left them out, while docs/privacy.md promises the payments with the gateway's
payment id): a fee paid at the desk, from the wallet or online, as the visit page lists
it (``refunds.queries``: the same statement, by patient), and a fee payment Razorpay
captured that paid no fee (its money went to the wallet); in a fixed number of
statements however many fees there are."""

import json

import sqlalchemy as sa

from portal.booking import coupons, reschedule_payment
from portal.booking.credit_notes import CreditNote
from portal.booking.models import FeeCapture, MasterBooking, Reschedule
from portal.extensions import db
from portal.privacy.export import rupees
from tests.booking.factories import at, captured_event, credit_wallet, post_webhook
from tests.querycount import counted_queries
from tests.refunds.helpers import (
    book_and_pay,
    booked_consult,
    hours,
    login,
    post_move,
    quoted_cancel,
    quoted_move,
    with_known_passwords,
)

START, NEW, LATER, LAST = at(4, 10), at(7, 11), at(8, 11), at(9, 11)
DOWNLOAD = "/me/account/data.json"


def _statements(client):
    """The download's text and its statements, read as a fresh request reads it."""
    db.session.remove()
    with counted_queries() as seen:
        text = _document(client)
    return text, seen


def _document(client):
    answer = client.get(DOWNLOAD)
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def test_the_data_download_lists_a_reschedule_fee_the_patient_paid(
    app, client, world, users, gateway, clock
):
    visit_id, item_id, invoice_no, email = booked_consult(world, users, gateway, START)
    clock.move_to(START - hours(60))
    login(client, users(world.admin).email)
    moved = post_move(
        client,
        f"/admin/bookings/{item_id}/reschedule",
        {"slot": NEW.isoformat(), "pay_with": "desk", "receipt_no": "DESK-0042"},
    )
    assert moved.status_code == 303
    fee = db.session.scalars(sa.select(Reschedule)).one()
    assert fee.total == 6_195
    login(client, email)
    text = _document(client)
    assert "61.95" in text and "DESK-0042" in text
    number = db.session.get(MasterBooking, visit_id).number
    (row,) = json.loads(text)["reschedule_fees"]
    assert row == {
        "visit": number,
        "service": "Consultation — Dr Doc 1",  # as its tax document describes it, as issued
        "document_number": fee.document_no,
        "against_invoice": invoice_no,
        "moved_from": "2026-06-05T10:00:00+05:30",
        "moved_to": "2026-06-08T11:00:00+05:30",
        "amount": "61.95",
        "gst": "9.45",
        "paid_with": "DESK",
        "receipt": "DESK-0042",
        "gateway_payment": None,
        "paid_at": row["paid_at"],
        "status": "PAID",
        "refund": None,
        "credit_note": None,
    }
    assert row["paid_at"].endswith("+05:30")


def test_fees_paid_online_and_from_the_wallet_and_a_capture_that_paid_none(
    app, client, world, users, gateway, clock
):
    """Each fee with how it was paid (the gateway's payment id for one paid online), a
    payment captured for the wrong amount as a row of its own (its money in the wallet),
    and the download's statements the same with none of them as with all three."""
    visit_id, item_id, invoice_no, email = booked_consult(world, users, gateway, START)
    credit_wallet(world.patients[0], 20_000)
    login(client, email)
    _document(client)  # warm
    _, before = _statements(client)

    # Online: paid on the gateway's checkout.
    clock.move_to(START - hours(60))
    patient = users(world.patients[0])
    online = quoted_move(
        patient, item_id, NEW, pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    ).reschedule
    paid = gateway.pay(online.razorpay_order_id)
    reschedule_payment.complete_callback(paid)
    gateway.deliver()
    online_id, paid_online = online.id, paid["razorpay_payment_id"]
    assert db.session.get(Reschedule, online_id).razorpay_payment_id == paid_online
    # From the wallet.
    clock.move_to(NEW - hours(60))
    moved = post_move(
        client,
        f"/me/bookings/{item_id}/reschedule",
        {"slot": LATER.isoformat(), "pay_with": "wallet"},
    )
    assert moved.status_code == 303
    # Razorpay captured ₹1 on a third move's order: no fee paid, ₹1 in the wallet.
    clock.move_to(LATER - hours(60))
    third = quoted_move(
        users(world.patients[0]),
        item_id,
        LAST,
        pay_with="gateway",
        callback_url="http://portal.test/cb/__ID__",
    ).reschedule
    wrong = gateway.pay(third.razorpay_order_id)["razorpay_payment_id"]
    gateway.sandbox.webhooks.pending = []
    post_webhook(app, captured_event(gateway, wrong, 100), "evt_fee_wrong")
    assert db.session.scalars(sa.select(FeeCapture.razorpay_payment_id)).all() == [wrong]

    text, after = _statements(client)
    assert len(after) == len(before), [s.splitlines()[0][:100] for s in after]
    rows = json.loads(text)["reschedule_fees"]
    assert [(r["paid_with"], r["status"], r["amount"]) for r in rows] == [
        ("GATEWAY", "PAID", "61.95"),
        ("WALLET", "PAID", "61.95"),
        ("GATEWAY", "NOT_APPLIED", "1.00"),
    ]
    assert rows[0]["gateway_payment"] == paid_online
    assert rows[0]["document_number"] == db.session.get(Reschedule, online_id).document_no
    assert rows[0]["document_number"].startswith("RF/") and rows[0]["against_invoice"] == invoice_no
    assert rows[1]["gateway_payment"] is None and rows[1]["receipt"] is None
    assert rows[2]["gateway_payment"] == wrong and rows[2]["document_number"] is None
    assert rows[2]["moved_to"] == "2026-06-10T11:00:00+05:30"


def test_the_download_names_the_credit_note_of_a_cancelled_visit(
    app, client, world, users, gateway, clock
):
    """Review rv_privacy: the receipt the patient is shown lists the GST credit note issued
    against their invoice when a visit is cancelled; the download listed a reschedule fee's
    credit note but not a visit's own: the patient's tax document was missing. Each visit
    lists its notes as its receipt does, read in one statement for all the visits."""
    visit_id, item_id, invoice_no, email = booked_consult(world, users, gateway, START)
    quoted_cancel(users(world.patients[0]), visit_id, [item_id])
    note = db.session.scalars(sa.select(CreditNote)).one()
    login(client, email)
    receipt = client.get(f"/me/visits/{visit_id}/receipt").get_data(as_text=True)
    assert note.number in receipt  # the patient is shown it
    text, one = _statements(client)
    (row,) = json.loads(text)["visits"]
    assert row["invoice_number"] == invoice_no
    (shown,) = row["credit_notes"]
    assert shown == {
        "number": note.number,
        "issued_at": shown["issued_at"],
        "service": "Consultation — Dr Doc 1",  # the line it reverses, as issued
        "gstin": note.clinic_gstin,
        "taxable_value": rupees(note.taxable_value),
        "exempt_value": rupees(note.exempt_value),
        "gst": "4.50",
    }
    assert note.gst == 450 and shown["issued_at"].endswith("+05:30")
    # A second visit cancelled: two notes, the same statements.
    second_id, second_item, _, _ = booked_consult(world, users, gateway, LATER)
    quoted_cancel(users(world.patients[0]), second_id, [second_item])
    text, two = _statements(client)
    assert [len(v["credit_notes"]) for v in json.loads(text)["visits"]] == [1, 1]
    assert len(two) == len(one), [s.splitlines()[0][:100] for s in two]


def test_the_download_names_the_coupon_the_patient_used(app, client, world, users, gateway, clock):
    """Review rv_privacy: the visit page says "Coupon SAVE10 −₹…"; the download had the
    discount's amount but not which coupon was used."""
    with_known_passwords()
    patient = users(world.patients[0])
    coupons.create_coupon(users(world.admin), code="SAVE10", kind="PERCENT", value=1_000)
    visit = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], START)], coupon="SAVE10"
    )
    visit_id, email = visit.id, patient.email
    assert visit.discount > 0
    db.session.remove()
    login(client, email)
    assert "SAVE10" in client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    document = json.loads(_document(client))
    (row,) = document["visits"]
    assert row["discount"] != "0.00"
    assert row["coupon"] == "SAVE10"
