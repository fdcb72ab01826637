"""Back from the gateway unpaid (the sandbox's "Fail payment"): the patient hears that the
times are still held and until when, and to press Pay again; or, once the hold has run
out, that it has and what to do. English and Hindi."""

import re
from datetime import timedelta

import time_machine

from portal.booking.errors import MSG_NOT_PAID
from portal.booking.models import MasterBooking
from portal.extensions import db
from portal.web.filters import clinic_time_short
from tests.web.booking.helpers import held_until, hold, returned_from_sandbox

FLASH = re.compile(r'<p class="flash flash-error" role="status">([^<]*)</p>')


def _message(client, back):
    answer = client.get(back.path, query_string=back.query)
    assert answer.status_code == 303
    page = client.get(answer.location).get_data(as_text=True)
    said = FLASH.findall(page)
    assert len(said) == 1, said
    return said[0], page


def test_a_failed_payment_says_the_times_are_held_until_when_and_to_pay_again(
    app, client, login, world, gateway
):
    visit_id, _ = hold(app, world)
    login(world.patient)
    back = returned_from_sandbox(client, visit_id, "failure")
    said, page = _message(client, back)
    until = clinic_time_short(held_until(app, visit_id))
    assert said == (
        f"Payment not completed: {MSG_NOT_PAID}. Your times are held until {until}; "
        "press Pay to try again."
    )
    assert 'id="pay"' in page  # and Pay is there to press


def test_a_failed_payment_after_the_hold_ran_out_says_so_and_what_to_do(
    app, client, login, world, gateway
):
    visit_id, item_id = hold(app, world)
    login(world.patient)
    back = returned_from_sandbox(client, visit_id, "failure")
    with time_machine.travel(held_until(app, visit_id) + timedelta(minutes=1), tick=False):
        said, page = _message(client, back)
    assert said == (
        f"Payment not completed: {MSG_NOT_PAID}. The hold on your times has ended, so they "
        "may have been taken: use Book again on an appointment to choose a new time."
    )
    # What it says to use is there: the hold was let go, the appointment can be booked again.
    assert f"/me/bookings/{item_id}/rebook" in page and 'id="pay"' not in page
    with app.app_context():
        assert db.session.get(MasterBooking, visit_id).status == "EXPIRED"
        db.session.remove()


def test_a_failed_payment_says_so_in_hindi(app, client, login, world, gateway):
    visit_id, _ = hold(app, world)
    login(world.patient)
    client.post("/language", data={"language": "hi", "next": "/"})
    back = returned_from_sandbox(client, visit_id, "failure")
    said, _ = _message(client, back)
    with app.test_request_context(headers={"Accept-Language": "hi"}):
        until = clinic_time_short(held_until(app, visit_id))
    assert said.startswith("भुगतान पूरा नहीं हुआ: चेकआउट पर इसे अस्वीकार या रद्द कर दिया गया।")
    assert f"आपके समय {until} तक रोके गए हैं" in said
    assert "Pay" not in said and "held" not in said
