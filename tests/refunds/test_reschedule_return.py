"""Issue #15, finding 6 for the reschedule fee's return (``/me/reschedules/<id>/paid``):
CSRF-exempt and possibly anonymous, so it writes nothing unless it is signed for THIS
reschedule's order, and it never shows text from the request."""

import sqlalchemy as sa

from portal.booking.models import IndividualBooking, Reschedule
from portal.extensions import db
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay, hours, quoted_move

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
