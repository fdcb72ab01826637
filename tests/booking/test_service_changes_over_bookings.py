"""Catalog changes to a service while its bookings lie ahead: a booking keeps what the
patient booked (its own length; its mode, as a change of mode is refused over it), and a
service's deactivation or its removal from a provider is refused over them, as a
provider's deactivation is (review r4a)."""

import pytest
from flask import render_template_string

from portal.booking import reschedule
from portal.booking.models import IndividualBooking
from portal.catalog.checks import ValidationError
from portal.catalog.models import Service
from portal.catalog.services import update_service
from portal.extensions import db
from portal.notify import wording
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


def _move_by_the_admin(admin, item_id):
    """The clinic moves the booking (it was not stranded)."""
    db.session.expire_all()
    item = db.session.get(IndividualBooking, item_id)
    _, fee = reschedule.quote(admin, item.id, admin_override=True)
    reschedule.reschedule(
        admin,
        item.id,
        at(3, 14),
        pay_with="DESK",
        receipt_no="R-move",
        admin_override=True,
        expected_fee=fee.total,
        shown_start=item.start_at,
    )
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item_id).start_at == at(3, 14)


def test_a_mode_change_does_not_turn_a_booked_in_person_visit_into_an_online_one(app, world, users):
    """A confirmed in-person consultation at Indiranagar: the admin switches the service
    to ONLINE. The change is refused over the booking ahead (its reminders and calendar
    entry would tell the patient it is online and drop the clinic's address), and the
    booked visit stays where the patient booked it."""
    item = _booked(world, users)
    assert "100 Ft Rd" in wording.place(item)
    with pytest.raises(ValidationError) as refused:
        update_service(users(world.admin), db.session.get(Service, world.consult), mode="ONLINE")
    assert set(refused.value.errors) == {"mode"}
    assert "1 booking of this service ahead" in refused.value.errors["mode"]
    db.session.expire_all()
    assert db.session.get(Service, world.consult).mode != "ONLINE"
    item = db.session.get(IndividualBooking, item.id)
    assert "100 Ft Rd" in wording.place(item), wording.place(item)


def test_a_booking_of_a_service_deactivated_afterwards_can_still_be_moved_by_the_admin(
    app, world, users
):
    """The admin takes a service off the booking pages over a confirmed booking ahead: the
    deactivation is refused until it is handled, as a provider's and a clinic's are (so
    every patient is told), and the booking can still be moved by the clinic."""
    item = _booked(world, users, day=3, hour=11)
    admin = users(world.admin)
    with pytest.raises(ValidationError) as refused:
        update_service(admin, db.session.get(Service, world.consult), active=False)
    assert set(refused.value.errors) == {"active"}
    assert "1 booking of this service ahead" in refused.value.errors["active"]
    db.session.expire_all()
    assert db.session.get(Service, world.consult).active
    _move_by_the_admin(admin, item.id)


def test_a_booking_with_a_provider_taken_off_its_service_can_still_be_moved_by_the_admin(
    app, world, users
):
    """The admin takes the consultation from Dr Doc 1's services (the provider form) over
    Dr Doc 1's confirmed consultation ahead: refused until it is handled, as a clinic taken
    from the provider is, and the booking can still be moved by the clinic."""
    from portal.catalog.models import Provider
    from portal.catalog.providers import update_provider

    item = _booked(world, users, day=3, hour=11)
    admin = users(world.admin)
    with pytest.raises(ValidationError) as refused:
        update_provider(
            admin,
            db.session.get(Provider, world.doctors[0]),
            registration_no="KMC-1",
            service_ids=[world.online, world.follow],
        )
    assert set(refused.value.errors) == {"service_ids"}, refused.value.errors
    assert "1 booking of Consultation with Dr Doc 1 ahead" in refused.value.errors["service_ids"]
    db.session.expire_all()
    assert world.consult in {s.id for s in db.session.get(Provider, world.doctors[0]).services}
    _move_by_the_admin(admin, item.id)


def test_a_provider_taken_from_a_service_on_its_form_is_refused_over_their_bookings(
    app, world, users
):
    """The same, from the service's form ("Offered by"): Dr Doc 1 taken away is refused
    over their consultation ahead."""
    _booked(world, users, day=3, hour=11)
    service = db.session.get(Service, world.consult)
    others = [p.id for p in service.providers if p.id != world.doctors[0]]
    with pytest.raises(ValidationError) as refused:
        update_service(users(world.admin), service, provider_ids=others)
    assert set(refused.value.errors) == {"provider_ids"}
    assert "provider being taken from it" in refused.value.errors["provider_ids"]


def test_a_service_without_bookings_ahead_changes_freely(app, world, users):
    """Nothing ahead: its mode changes and it is taken off the booking pages."""
    admin = users(world.admin)
    service = update_service(admin, db.session.get(Service, world.consult), mode="ONLINE")
    db.session.commit()
    assert service.mode == "ONLINE"
    update_service(admin, db.session.get(Service, world.consult), active=False)
    db.session.commit()
    assert not db.session.get(Service, world.consult).active
