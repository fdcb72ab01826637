"""A reschedule fee under ₹1 (Razorpay's smallest order, ``MIN_ONLINE_PAYMENT``) is not
paid online: the move refuses it with a message saying how to pay instead (the wallet, the
desk), and the move page does not offer "Pay online" for it. Before, it went to Razorpay,
which refused the order, and the patient read "Payments are unavailable right now; please
try again in a few minutes" for ever (review finding). As the visit's checkout: nothing
under ₹1 goes to Razorpay."""

import sqlalchemy as sa
from flask_babel import refresh

from portal.booking import reschedule_payment
from portal.booking.errors import BookingError
from portal.booking.models import IndividualBooking, Reschedule, SlotClaim
from portal.booking.reschedule import MSG_GATEWAY_DOWN, MSG_ONLINE_MINIMUM_FEE
from portal.catalog.models import Service
from portal.extensions import db
from tests.booking.factories import at, credit_wallet
from tests.refunds.helpers import (
    book_and_pay,
    hours,
    login,
    move_fields,
    quoted_move,
    with_known_passwords,
)

START = at(4, 10)
NEW = at(7, 11)
FEE = 63  # 10 % of ₹5 = 50, platform fee 3, GST 10


def _five_rupee_booking(world, users, gateway, clock):
    """A ₹5 service booked and paid for, the clock 60 h before it (the 10 % tier)."""
    db.session.get(Service, world.consult).fee_paise = 500
    db.session.commit()
    patient = users(world.patients[0])
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], START)]
    ).items[0]
    clock.move_to(START - hours(60))
    return patient, item.id


def test_a_fee_under_a_rupee_can_be_paid_online(world, users, gateway, clock):
    """A ₹5 service (the catalog allows any fee from ₹1) moved 60 h ahead costs 63 paise
    (10 % = 50, platform fee 3, GST 10). Razorpay's smallest order is ₹1, so the online
    checkout is refused and the patient is told "Payments are unavailable right now;
    please try again in a few minutes" for ever: the only way offered to a patient with
    an empty wallet never works (the visit checkout already guards its ₹1 minimum)."""
    db.session.get(Service, world.consult).fee_paise = 500
    db.session.commit()
    patient = users(world.patients[0])
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], START)]
    ).items[0]
    assert item.fee == 500
    clock.move_to(START - hours(60))
    try:
        result = quoted_move(
            patient, item.id, NEW, pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
        )
    except BookingError as exc:
        # Refusing is a fix too, if it says why (and what to do); not "try again later".
        assert exc.message != MSG_GATEWAY_DOWN
        return
    done = reschedule_payment.complete_callback(gateway.pay(result.reschedule.razorpay_order_id))
    assert done.status == "DONE"


def test_a_fee_under_a_rupee_online_is_refused_saying_how_to_pay(world, users, gateway, clock):
    patient, item_id = _five_rupee_booking(world, users, gateway, clock)
    try:
        quoted_move(
            patient, item_id, NEW, pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
        )
    except BookingError as exc:
        refusal = exc
    else:
        raise AssertionError("a 63-paise fee went online")
    assert refusal.message.template == MSG_ONLINE_MINIMUM_FEE
    assert refusal.field == "pay_with"
    assert str(refusal.message) == (
        "Online payments start at ₹1, so this fee of ₹0.63 cannot be paid online: pay it "
        "from your wallet, or at the clinic's desk."
    )
    db.session.expire_all()
    # Nothing asked, held or moved.
    assert db.session.scalars(sa.select(Reschedule)).all() == []
    assert (
        db.session.scalars(sa.select(SlotClaim).where(SlotClaim.reschedule_id.is_not(None))).all()
        == []
    )
    assert db.session.get(IndividualBooking, item_id).start_at == START


def test_a_fee_under_a_rupee_is_paid_from_the_wallet(world, users, gateway, clock):
    patient, item_id = _five_rupee_booking(world, users, gateway, clock)
    credit_wallet(patient.id, FEE)
    result = quoted_move(patient, item_id, NEW, pay_with="wallet")
    assert (result.reschedule.status, result.reschedule.total) == ("DONE", FEE)
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item_id).start_at == NEW


def test_the_move_page_does_not_offer_online_for_a_fee_under_a_rupee(
    app, world, users, gateway, clock
):
    with_known_passwords()
    patient, item_id = _five_rupee_booking(world, users, gateway, clock)
    client = app.test_client()
    login(client, patient.email)
    page = client.get(f"/me/bookings/{item_id}/reschedule").get_data(as_text=True)
    assert 'value="gateway"' not in page
    assert "Pay online" not in page
    assert "Online payments start at ₹1, so this fee is paid from your wallet" in page
    # A post asking for online all the same (a page from before, a hand-made one): refused,
    # in the reader's language.
    post = {**move_fields(page), "slot": NEW.isoformat(), "pay_with": "gateway"}
    url = f"/me/bookings/{item_id}/reschedule"
    refused = client.post(url, data=post)
    assert refused.status_code == 422
    assert "so this fee of ₹0.63 cannot be paid online" in refused.text
    client.post("/language", data={"language": "hi", "next": "/"})
    refresh()  # the test's app context outlives the requests, and Babel's locale with it
    hindi = client.get(url).text
    assert "ऑनलाइन भुगतान कम से कम ₹1 का होता है, इसलिए यह शुल्क आपके वॉलेट" in hindi
    refused = client.post(url, data=post)
    assert refused.status_code == 422
    assert "इसलिए ₹0.63 का यह शुल्क ऑनलाइन नहीं चुकाया जा सकता" in refused.text
    db.session.expire_all()
    assert db.session.scalars(sa.select(Reschedule)).all() == []


def test_the_move_page_offers_online_for_a_fee_of_a_rupee_or_more(
    app, world, users, gateway, clock
):
    with_known_passwords()
    patient = users(world.patients[0])
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], START)]
    ).items[0]
    clock.move_to(START - hours(60))
    client = app.test_client()
    login(client, patient.email)
    page = client.get(f"/me/bookings/{item.id}/reschedule").get_data(as_text=True)
    assert 'value="gateway"' in page and "Online payments start at" not in page
