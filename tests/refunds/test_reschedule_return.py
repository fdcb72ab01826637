"""Issue #15, finding 6 for the reschedule fee's return (``/me/reschedules/<id>/paid``):
CSRF-exempt and possibly anonymous, so it writes nothing unless it is signed for THIS
reschedule's order, and it never shows text from the request."""

import re
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from portal.booking.errors import MSG_CONFIRMING
from portal.booking.models import IndividualBooking, Reschedule
from portal.extensions import db
from tests.booking.factories import at
from tests.cross_site import post_cross_site
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


def _sent_to_returned(response, reschedule_id):
    """The POST return's answer: a 303 to that reschedule's ``/returned``; its code."""
    assert response.status_code == 303
    where = urlsplit(response.location)
    assert where.path == f"/me/reschedules/{reschedule_id}/returned"
    query = parse_qs(where.query)
    assert list(query) == ["outcome"] and len(query["outcome"]) == 1, query
    return query["outcome"][0]


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
    # On to the signed-in GET with a fixed code, never the posted text.
    assert _sent_to_returned(response, theirs[1]) == "unpaid"
    assert not any("90000" in text for text in _flashes(client))

    response = client.post(f"/me/reschedules/{theirs[1]}/paid", data=params)
    assert _sent_to_returned(response, theirs[1]) == "unverified"
    db.session.expire_all()
    statuses = dict(db.session.execute(sa.select(Reschedule.id, Reschedule.status)).all())
    assert statuses[mine[1]] == statuses[theirs[1]] == "PENDING_PAYMENT"
    assert db.session.get(IndividualBooking, mine[0]).start_at == START

    response = client.post(f"/me/reschedules/{mine[1]}/paid", data=params)  # its own: it moves
    assert _sent_to_returned(response, mine[1]) == "paid"
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


def _told(client, url, visit_id):
    """GET ``url`` (where the return redirects) with the patient's cookie: the visit page's
    flashes."""
    told = client.get(url)
    assert told.status_code == 303 and told.location.endswith(f"/me/visits/{visit_id}")
    page = client.get(told.location)
    assert page.status_code == 200
    return FLASH.findall(page.get_data(as_text=True))


def test_a_failed_fee_post_return_keeps_the_patient_signed_in(app, world, users, gateway, clock):
    client, visit_id, reschedule_id, _ = _signed_in_with_a_pending_fee(
        app, world, users, gateway, clock
    )
    fields = {"error[code]": "BAD_REQUEST_ERROR", "error[description]": "Call +91 90000 00000"}
    answer = post_cross_site(app, f"/me/reschedules/{reschedule_id}/paid", fields)
    [(kind, text)] = _told(client, answer.location, visit_id)
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
    answer = post_cross_site(app, f"/me/reschedules/{reschedule_id}/paid", fields)
    assert _told(client, answer.location, visit_id) == [
        ("success", "Fee paid; your appointment has moved.")
    ]
    db.session.expire_all()
    assert db.session.get(Reschedule, reschedule_id).status == "DONE"


# The signed-in GET the POST return redirects to (``reschedule_returned``): only the owner
# is told, only a fixed code is told, and a fee not yet applied is "still confirming".

CONFIRMING = ("info", MSG_CONFIRMING)


def test_the_fee_outcome_address_is_the_owners_only(app, world, users, gateway, clock):
    client, _visit_id, reschedule_id, _ = _signed_in_with_a_pending_fee(
        app, world, users, gateway, clock
    )
    stranger = app.test_client()
    login(stranger, users(world.patients[1]).email)
    for outcome in ("paid", "unpaid", "unverified", "confirming", "nonsense"):
        told = stranger.get(f"/me/reschedules/{reschedule_id}/returned?outcome={outcome}")
        assert told.status_code == 404, outcome
    assert _flashes(stranger) == []
    db.session.expire_all()
    assert db.session.get(Reschedule, reschedule_id).status == "PENDING_PAYMENT"


def test_an_unknown_fee_outcome_is_the_visit_page_with_nothing_said(
    app, world, users, gateway, clock
):
    client, visit_id, reschedule_id, _ = _signed_in_with_a_pending_fee(
        app, world, users, gateway, clock
    )
    returned = f"/me/reschedules/{reschedule_id}/returned"
    for query in ("?outcome=Call+%2B91+90000+00000", "?outcome=PAID", ""):
        assert _told(client, returned + query, visit_id) == [], query
    page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    assert "90000" not in page


def test_a_fee_still_being_confirmed_says_so(app, world, users, gateway, clock):
    """ "confirming" (the gateway had not captured it yet), and "paid" while the fee is not
    applied yet (the row still waits for it): both say it is still being confirmed."""
    client, visit_id, reschedule_id, _ = _signed_in_with_a_pending_fee(
        app, world, users, gateway, clock
    )
    returned = f"/me/reschedules/{reschedule_id}/returned"
    assert _told(client, f"{returned}?outcome=confirming", visit_id) == [CONFIRMING]
    assert _told(client, f"{returned}?outcome=paid", visit_id) == [CONFIRMING]
    db.session.expire_all()
    assert db.session.get(Reschedule, reschedule_id).status == "PENDING_PAYMENT"
