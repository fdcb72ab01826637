"""A move whose fee was not paid tells the patient what is left of the hold on the new time
(left last session: the reschedule fee's unpaid return gave only the reason, where a
visit's says until when its times are held and how to try again)."""

import re

from portal.booking.models import IndividualBooking, Reschedule
from portal.booking.reschedule import quote
from portal.extensions import db
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay, hours, login, quoted_move, with_known_passwords

START, NEW = at(4, 10), at(7, 11)
FLASH = re.compile(r'<p class="flash flash-(\w+)" role="status">([^<]*)</p>')


def _declined_fee(app, world, users, gateway, clock):
    """The patient asks to move a paid booking, pays the fee on the sandbox's checkout and
    declines it there: the browser comes back to the GET return with error fields."""
    clock.move_to(START - hours(60))
    with_known_passwords()
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], START)])
    item_id = visit.items[0].id
    moved = quoted_move(
        patient,
        item_id,
        NEW,
        pay_with="gateway",
        callback_url="http://portal.test/me/reschedules/__ID__/paid",
    )
    resched = moved.reschedule
    fields = gateway.pay(resched.razorpay_order_id, outcome="failure")
    db.session.commit()
    client = app.test_client()
    login(client, patient.email)
    return client, visit.id, item_id, resched.id, fields


def _told(client, reschedule_id, fields, visit_id):
    answer = client.get(f"/me/reschedules/{reschedule_id}/paid", query_string=fields)
    assert answer.status_code == 303 and answer.location.endswith(f"/me/visits/{visit_id}")
    return FLASH.findall(client.get(answer.location).get_data(as_text=True))


def test_an_unpaid_fee_says_until_when_the_new_time_is_held(app, world, users, gateway, clock):
    client, visit_id, item_id, reschedule_id, fields = _declined_fee(
        app, world, users, gateway, clock
    )
    expires = db.session.get(Reschedule, reschedule_id).expires_at
    [(kind, text)] = _told(client, reschedule_id, fields, visit_id)
    assert kind == "error"
    assert text.startswith("Payment not completed: It was declined or cancelled at the checkout.")
    assert "Your appointment has not moved; Mon 08 Jun 2026, 11:00 IST is held for you" in text
    until = f"{(expires + hours(5, 30)):%H:%M} IST"  # clinic_time_short: today's, so no date
    assert f"until {until}: choose it again under Reschedule to pay the fee." in text
    # Chosen again, as it says: the new request replaces the unpaid one and takes its time.
    patient = users(world.patients[0])
    again = quoted_move(
        patient,
        item_id,
        NEW,
        pay_with="gateway",
        callback_url="http://portal.test/me/reschedules/__ID__/paid",
    )
    db.session.expire_all()
    assert db.session.get(Reschedule, reschedule_id).status == "EXPIRED"
    assert again.reschedule.status == "PENDING_PAYMENT" and again.reschedule.new_start == NEW
    assert db.session.get(IndividualBooking, item_id).start_at == START


def test_an_unpaid_fee_after_its_hold_ran_out_says_it_ended(app, world, users, gateway, clock):
    client, visit_id, item_id, reschedule_id, fields = _declined_fee(
        app, world, users, gateway, clock
    )
    clock.move_to(db.session.get(Reschedule, reschedule_id).expires_at + hours(0, 1))
    [(kind, text)] = _told(client, reschedule_id, fields, visit_id)
    assert kind == "error"
    assert text == (
        "Payment not completed: It was declined or cancelled at the checkout. Your "
        "appointment has not moved, and the hold on Mon 08 Jun 2026, 11:00 IST has ended: "
        "choose a time again under Reschedule."
    )
    assert quote(users(world.patients[0]), item_id)[1].allowed  # Reschedule is still offered
