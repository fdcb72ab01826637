"""Catalog changes to a service while its bookings lie ahead: a booking keeps what the
patient booked (its own length; its mode, as a change of mode is refused over it), and a
service's deactivation or its removal from a provider is refused over them, as a
provider's deactivation is (review r4a)."""

from flask import render_template_string

from portal.booking.models import IndividualBooking
from portal.catalog.models import Service
from portal.catalog.services import update_service
from portal.extensions import db
from tests.booking.factories import at, held_consult, quoted_desk_payment


def _booked(world, users, day=3, hour=11):
    item = held_consult(world, day, hour)
    quoted_desk_payment(users(world.admin), item.master_id, f"R-{item.id}")
    db.session.expire_all()
    return db.session.get(IndividualBooking, item.id)


def test_the_patients_visit_page_states_the_bookings_own_length_not_the_services_new_one(
    app, world, users
):
    """A 30-minute consultation confirmed; the admin lengthens the service to 60 minutes.
    The booking keeps its 30 minutes (reschedule.check_slot, payment_events: "its own
    length, whatever the service's now"), so the patient's page must say 30 min."""
    item = _booked(world, users)
    update_service(users(world.admin), db.session.get(Service, world.consult), duration_minutes=60)
    db.session.commit()
    db.session.expire_all()
    item = db.session.get(IndividualBooking, item.id)
    assert item.end_at - item.start_at == at(3, 11, 30) - at(3, 11)
    with app.test_request_context("/"):
        html = render_template_string(
            '{% from "patient/visits/_macros.html" import item_heading %}{{ item_heading(item) }}',
            item=item,
        )
    assert "30 min" in html and "60 min" not in html, html
