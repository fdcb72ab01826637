"""A move confirmed on a page that showed a start the booking no longer has (review
finding: two tabs, or the patient and the desk, opened the move page; both confirmed, the
booking moved twice and the fee was taken twice). The move carries the start its page
showed (``reschedule(..., shown_start=…)``, required like ``expected_fee``) and another
start now refuses: nothing charged, held or moved; the page says where the appointment
is now (English and Hindi) and confirming from it moves the booking."""

import pytest
import sqlalchemy as sa
from flask_babel import refresh

from portal.booking import reschedule as rs
from portal.booking import reschedule_payment
from portal.booking.errors import BookingError
from portal.booking.models import IndividualBooking, Reschedule
from portal.domain.states import RescheduleStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from tests.booking.factories import at, credit_wallet
from tests.refunds.helpers import (
    book_and_pay,
    hours,
    login,
    move_fields,
    quoted_move,
    with_known_passwords,
)

START = at(4, 10)  # Friday 5 June 2026, 10:00 IST
MOVED = "This appointment was moved to Fri 05 Jun 2026, 14:00 after the page was shown"
MOVED_HI = "पेज दिखाए जाने के बाद यह अपॉइंटमेंट शुक्र 05 जून 2026, 14:00 पर कर दिया गया"


def _booked(world, users, gateway):
    patient = users(world.patients[0])
    item = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], START)])
    return patient, item.items[0]


def _spent_and_done(patient_id, before):
    db.session.expire_all()
    done = db.session.scalars(
        sa.select(Reschedule).where(Reschedule.status == RescheduleStatus.DONE)
    ).all()
    return before - balance(chart.patient_wallet(patient_id)), len(done)


def test_two_tabs_moving_one_booking_charge_the_fee_once(world, users, gateway, clock):
    """The reviewer's case: two pages of the same state (10 % tier); the first moves the
    booking to 14:00, the second (for 15:00) showed 10:00 and is refused."""
    patient, item = _booked(world, users, gateway)
    clock.move_to(START - hours(60))
    _, shown_a = rs.quote(patient, item.id)  # tab A
    _, shown_b = rs.quote(patient, item.id)  # tab B, the same page state
    credit_wallet(patient.id, 10 * shown_a.total)
    before = balance(chart.patient_wallet(patient.id))
    rs.reschedule(
        patient,
        item.id,
        at(4, 14),
        pay_with="wallet",
        expected_fee=shown_a.total,
        shown_start=START,
    )
    with pytest.raises(BookingError) as refused:
        rs.reschedule(
            patient,
            item.id,
            at(4, 15),
            pay_with="wallet",
            expected_fee=shown_b.total,
            shown_start=START,
        )
    assert str(refused.value.message).startswith(MOVED)
    assert _spent_and_done(patient.id, before) == (shown_a.total, 1)
    assert db.session.get(IndividualBooking, item.id).start_at == at(4, 14)


@pytest.mark.parametrize("shown", [None, "2026-06-05T10:00", 1780635600])
def test_a_move_without_the_start_shown_is_asked_again(world, users, gateway, clock, shown):
    """``shown_start`` is required, and only an aware datetime is a start shown."""
    patient, item = _booked(world, users, gateway)
    with pytest.raises(TypeError, match="shown_start"):
        rs.reschedule(patient, item.id, at(7, 11), expected_fee=0)
    with pytest.raises(BookingError, match="time shown"):
        rs.reschedule(patient, item.id, at(7, 11), expected_fee=0, shown_start=shown)
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item.id).start_at == START
    assert not db.session.scalars(sa.select(Reschedule)).all()


def test_a_pending_online_move_then_a_move_from_the_same_page_charges_once(
    world, users, gateway, clock
):
    """Decision (docs/refunds.md "Reschedule"): a move paid online does not move the
    booking until its payment arrives, so a second move from the same page state is not
    stale; it replaces the pending one (as any newer request does) and moves the booking.
    The first's payment, arriving after, moves nothing (its request was replaced) and
    goes to the wallet: one fee kept."""
    patient, item = _booked(world, users, gateway)
    clock.move_to(START - hours(60))
    online = quoted_move(
        patient,
        item.id,
        at(4, 14),
        pay_with="gateway",
        callback_url="http://portal.test/cb/__ID__",
    ).reschedule
    credit_wallet(patient.id, 100_000)
    before = balance(chart.patient_wallet(patient.id))
    quoted_move(patient, item.id, at(4, 15), pay_with="wallet")
    reschedule_payment.complete_callback(gateway.pay(online.razorpay_order_id))
    gateway.deliver()
    spent, done = _spent_and_done(patient.id, before)
    assert (spent, done) == (0, 1)  # the wallet paid one fee and got the online one back
    assert db.session.get(IndividualBooking, item.id).start_at == at(4, 15)
    assert db.session.get(Reschedule, online.id).status != RescheduleStatus.DONE


def test_a_paid_online_move_does_not_move_a_booking_moved_since(world, users, gateway, clock):
    """A pending online move whose booking has another start when its payment arrives
    (moved by any path that did not replace the request) moves nothing: the fee goes to
    the wallet, the booking stays where it is."""
    patient, item = _booked(world, users, gateway)
    clock.move_to(START - hours(60))
    online = quoted_move(
        patient,
        item.id,
        at(4, 14),
        pay_with="gateway",
        callback_url="http://portal.test/cb/__ID__",
    ).reschedule
    row = db.session.get(IndividualBooking, item.id)
    row.start_at, row.end_at = at(4, 16), at(4, 16, 30)  # moved outside the reschedule flow
    db.session.commit()
    before = balance(chart.patient_wallet(patient.id))
    reschedule_payment.complete_callback(gateway.pay(online.razorpay_order_id))
    gateway.deliver()
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item.id).start_at == at(4, 16)
    assert db.session.get(Reschedule, online.id).status == RescheduleStatus.FAILED
    assert balance(chart.patient_wallet(patient.id)) - before == online.total


# --- the pages -----------------------------------------------------------------------------


@pytest.fixture
def pages(app, world, users, gateway, clock):
    with_known_passwords()
    patient, item = _booked(world, users, gateway)
    credit_wallet(patient.id, 100_000)
    emails = {"patient": patient.email, "admin": users(world.admin).email}
    clock.move_to(START - hours(60))
    item_id = item.id
    db.session.remove()
    return item_id, emails


def test_the_patients_stale_page_is_told_where_the_appointment_is_now(app, client, pages):
    item_id, emails = pages
    url = f"/me/bookings/{item_id}/reschedule"
    login(client, emails["patient"])
    tab_a = move_fields(client.get(url).text)
    tab_b = move_fields(client.get(url).text)
    moved = client.post(url, data={**tab_a, "slot": at(4, 14).isoformat(), "pay_with": "wallet"})
    assert moved.status_code == 303
    stale = {**tab_b, "slot": at(4, 15).isoformat(), "pay_with": "wallet"}
    refused = client.post(url, data=stale)
    assert refused.status_code == 422
    assert MOVED in refused.text
    client.post("/language", data={"language": "hi", "next": "/"})
    refresh()  # the test's app context outlives the requests, and Babel's locale with it
    hindi = client.post(url, data=stale)
    assert hindi.status_code == 422
    assert MOVED_HI in hindi.text
    with app.app_context():
        assert len(db.session.scalars(sa.select(Reschedule)).all()) == 1
        assert db.session.get(IndividualBooking, item_id).start_at == at(4, 14)
    again = client.post(url, data={**stale, **move_fields(hindi.text)})  # the page as it is now
    assert again.status_code == 303
    with app.app_context():
        assert db.session.get(IndividualBooking, item_id).start_at == at(4, 15)


def test_the_desk_page_opened_before_the_patient_moved_is_refused(app, client, pages):
    item_id, emails = pages
    login(client, emails["admin"])
    url = f"/admin/bookings/{item_id}/reschedule"
    desk = move_fields(client.get(url).text)
    with app.app_context():
        from portal.accounts.models import User

        patient = db.session.scalar(sa.select(User).where(User.email == emails["patient"]))
        quoted_move(patient, item_id, at(4, 14), pay_with="wallet")
    refused = client.post(
        url, data={**desk, "slot": at(4, 15).isoformat(), "pay_with": "desk", "receipt_no": "D-1"}
    )
    assert refused.status_code == 422
    assert MOVED in refused.text
    with app.app_context():
        assert len(db.session.scalars(sa.select(Reschedule)).all()) == 1
        assert db.session.get(IndividualBooking, item_id).start_at == at(4, 14)


def test_a_move_page_post_without_the_start_is_asked_again(app, client, pages):
    item_id, emails = pages
    url = f"/me/bookings/{item_id}/reschedule"
    login(client, emails["patient"])
    fields = move_fields(client.get(url).text)
    for start in (None, "", "abc", "-5"):
        data = {"shown_fee": fields["shown_fee"], "slot": at(4, 14).isoformat()}
        data["pay_with"] = "wallet"
        if start is not None:
            data["shown_start"] = start
        refused = client.post(url, data=data)
        assert refused.status_code == 422, start
        assert "Check the appointment&#39;s time shown" in refused.text, start
    with app.app_context():
        assert not db.session.scalars(sa.select(Reschedule)).all()


@pytest.mark.parametrize("who", ["patient", "admin"])
def test_a_start_stamp_beyond_any_date_is_asked_again_not_a_500(app, client, pages, who):
    """Twelve digits pass as a whole number but lie past year 9999 (re-read finding: both
    move pages answered 500)."""
    item_id, emails = pages
    login(client, emails[who])
    area = "me" if who == "patient" else "admin"
    url = f"/{area}/bookings/{item_id}/reschedule"
    data = {**move_fields(client.get(url).text), "slot": at(4, 14).isoformat()}
    data.update(
        {"pay_with": "wallet"} if who == "patient" else {"pay_with": "desk", "receipt_no": "D-1"}
    )
    data["shown_start"] = "999999999999"
    refused = client.post(url, data=data)
    assert refused.status_code == 422
    assert "Check the appointment&#39;s time shown" in refused.text
    with app.app_context():
        assert not db.session.scalars(sa.select(Reschedule)).all()
        assert db.session.get(IndividualBooking, item_id).start_at == START


def test_a_stale_page_whose_booking_moved_inside_the_cutoff_still_says_so(app, client, pages):
    """The other tab moved the appointment to within 24 h: the page drawn again has no move
    form (no move is allowed now), so the refusal is said at the top (``refusal_alert``),
    not lost behind the cut-off's message (review finding, a phone in Hindi)."""
    item_id, emails = pages
    url = f"/me/bookings/{item_id}/reschedule"
    login(client, emails["patient"])
    tab_a = move_fields(client.get(url).text)
    with app.app_context():
        from portal.accounts.models import User

        patient = db.session.scalar(sa.select(User).where(User.email == emails["patient"]))
        quoted_move(patient, item_id, START - hours(48), pay_with="wallet")  # 12 h from now
    refused = client.post(url, data={**tab_a, "slot": at(4, 15).isoformat(), "pay_with": "wallet"})
    assert refused.status_code == 422
    top = refused.text.split('id="move-refused"', 1)[1].split("</div>", 1)[0]
    assert "This appointment was moved to Wed 03 Jun 2026, 10:00 after the page was shown" in top
    assert 'name="slot"' not in refused.text  # no move form drawn: the alert is the only word
    with app.app_context():
        assert db.session.get(IndividualBooking, item_id).start_at == START - hours(48)
