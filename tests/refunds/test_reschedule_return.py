"""Issue #15, finding 6 for the reschedule fee's return (``/me/reschedules/<id>/paid``):
CSRF-exempt and possibly anonymous, so it writes nothing unless it is signed for THIS
reschedule's order, and it never shows text from the request."""

import re

import sqlalchemy as sa

from portal.booking.models import IndividualBooking, Reschedule
from portal.extensions import db
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay, hours, login, quoted_move, with_known_passwords

START, NEW, OTHER_NEW = at(4, 10), at(7, 11), at(7, 15)


def pending_reschedule(world, patient, gateway, start, new, doctor):
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[doctor]], start)])
    item = visit.items[0]
    result = quoted_move(
        patient,
        item.id,
        new,
        pay_with="gateway",
        callback_url="http://portal.test/me/reschedules/__ID__/paid",
    )
    return item.id, result.reschedule.id, result.reschedule.razorpay_order_id


def _flashes(client):
    with client.session_transaction() as session:
        return [text for _cat, text in session.get("_flashes", [])]


def test_the_reschedule_return_writes_nothing_unless_signed_and_matching(
    app, world, users, gateway, clock
):
    clock.move_to(START - hours(60))
    mine = pending_reschedule(world, users(world.patients[0]), gateway, START, NEW, 0)
    theirs = pending_reschedule(world, users(world.patients[1]), gateway, START, OTHER_NEW, 1)
    params = gateway.pay(mine[2])  # genuinely signed, for MY reschedule's order
    db.session.commit()

    client = app.test_client()
    response = client.post(
        f"/me/reschedules/{theirs[1]}/paid", data={"error[description]": "Call +91 90000 00000"}
    )
    assert response.status_code == 303
    assert not any("90000" in text for text in _flashes(client))

    response = client.post(f"/me/reschedules/{theirs[1]}/paid", data=params)
    assert response.status_code == 303
    db.session.expire_all()
    statuses = dict(db.session.execute(sa.select(Reschedule.id, Reschedule.status)).all())
    assert statuses[mine[1]] == statuses[theirs[1]] == "PENDING_PAYMENT"
    assert db.session.get(IndividualBooking, mine[0]).start_at == START

    client.post(f"/me/reschedules/{mine[1]}/paid", data=params)  # its own: it moves
    db.session.expire_all()
    assert db.session.get(Reschedule, mine[1]).status == "DONE"
    assert db.session.get(IndividualBooking, mine[0]).start_at == NEW


# Razorpay's hosted checkout posts the return cross-site: the browser sends no session
# cookie (SameSite=Lax). A session cookie set by that answer (one holding only a flash)
# would replace the patient's and sign them out; the signed-in GET it redirects to tells.

FLASH = re.compile(r'<p class="flash flash-(\w+)" role="status">([^<]*)</p>')


def _signed_in_with_a_pending_fee(app, world, users, gateway, clock):
    clock.move_to(START - hours(60))
    with_known_passwords()
    patient = users(world.patients[0])
    item_id, reschedule_id, order_id = pending_reschedule(world, patient, gateway, START, NEW, 0)
    visit_id = db.session.get(IndividualBooking, item_id).master_id
    client = app.test_client()
    login(client, patient.email)
    db.session.commit()
    return client, visit_id, reschedule_id, order_id


def _posted_cross_site(app, path, fields):
    answer = app.test_client().post(path, data=fields)
    assert answer.status_code == 303
    cookie = app.config["SESSION_COOKIE_NAME"]
    set_cookies = answer.headers.getlist("Set-Cookie")
    assert not [c for c in set_cookies if c.startswith(f"{cookie}=")], set_cookies
    return answer


def _told(client, answer, visit_id):
    """Follow the return's redirect with the patient's cookie: the visit page's flashes."""
    told = client.get(answer.location)
    assert told.status_code == 303 and told.location.endswith(f"/me/visits/{visit_id}")
    page = client.get(told.location)
    assert page.status_code == 200
    return FLASH.findall(page.get_data(as_text=True))


def test_a_failed_fee_post_return_keeps_the_patient_signed_in(app, world, users, gateway, clock):
    client, visit_id, reschedule_id, _ = _signed_in_with_a_pending_fee(
        app, world, users, gateway, clock
    )
    fields = {"error[code]": "BAD_REQUEST_ERROR", "error[description]": "Call +91 90000 00000"}
    answer = _posted_cross_site(app, f"/me/reschedules/{reschedule_id}/paid", fields)
    [(kind, text)] = _told(client, answer, visit_id)
    assert kind == "error"
    assert text.startswith(
        "Payment not completed: It was declined or cancelled at the checkout. "
        "Your appointment has not moved;"
    )
    db.session.expire_all()
    assert db.session.get(Reschedule, reschedule_id).status == "PENDING_PAYMENT"


def test_a_paid_fee_post_return_keeps_the_patient_signed_in(app, world, users, gateway, clock):
    client, visit_id, reschedule_id, order_id = _signed_in_with_a_pending_fee(
        app, world, users, gateway, clock
    )
    fields = gateway.pay(order_id)
    db.session.commit()
    answer = _posted_cross_site(app, f"/me/reschedules/{reschedule_id}/paid", fields)
    assert _told(client, answer, visit_id) == [("success", "Fee paid; your appointment has moved.")]
    db.session.expire_all()
    assert db.session.get(Reschedule, reschedule_id).status == "DONE"
