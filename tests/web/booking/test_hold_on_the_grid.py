"""The patient's hold accepts only a start the free times show.

Slots start every 30 minutes (docs/decisions.md "Slots", ``SLOT_STEP_MINUTES``) and the
day's times page offers 10:00 and 10:30. A patient's crafted post of 10:15 (or of 10:00:07)
was held (review finding): one 30-minute consultation then took both offered times away
from every other patient, at a time the clinic never offered. Now it is refused (422,
"Choose one of the times shown", Hindi too), nothing held. The admin's desk may still type
a time off the grid to fit a patient in (decision, docs/booking.md "The grid")."""

import sqlalchemy as sa

from portal.booking.models import IndividualBooking, SlotClaim
from portal.extensions import db
from tests.web.booking.helpers import IST, slot

HX = {"HX-Request": "true", "HX-Target": "times"}


def _hold_form(world, start):
    return {
        "provider": world.doc1,
        "service": world.consult,
        "clinic": world.clinic,
        "start": start.isoformat(),
        "person": "self",
        "referral": "",
    }


def _times(client, world):
    url = (
        f"/find/times?provider={world.doc1}&service={world.consult}&clinic={world.clinic}"
        f"&date={world.day.isoformat()}"
    )
    html = client.get(url, headers=HX).get_data(as_text=True)
    return [t for t in ("09:30", "10:00", "10:30", "11:00") if f">{t}</a>" in html]


def _nothing_held(app):
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IndividualBooking)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SlotClaim)) == 0


def test_a_crafted_start_between_two_offered_times_is_refused(app, client, login, world):
    assert _times(client, world) == ["09:30", "10:00", "10:30", "11:00"]
    login(world.patient)
    answer = client.post("/me/book", data=_hold_form(world, slot(world.day, 10, 15)))
    assert answer.status_code == 422, f"held a time never offered ({answer.status_code})"
    assert "Choose one of the times shown" in answer.get_data(as_text=True)
    _nothing_held(app)
    # And so nobody else loses two offered times to one consultation.
    assert _times(client, world) == ["09:30", "10:00", "10:30", "11:00"]


def test_a_crafted_start_seven_seconds_past_an_offered_time_is_refused(app, client, login, world):
    login(world.patient)
    start = slot(world.day, 10).replace(second=7)
    answer = client.post("/me/book", data=_hold_form(world, start))
    assert answer.status_code == 422, f"held 10:00:07, never offered ({answer.status_code})"
    _nothing_held(app)
    assert "10:30" in _times(client, world)
    # The offered time itself is held.
    assert client.post("/me/book", data=_hold_form(world, slot(world.day, 10))).status_code == 303


def test_the_off_grid_refusal_is_in_hindi_on_a_hindi_book_page(app, client, login, world):
    login(world.patient)
    client.post("/language", data={"language": "hi", "next": "/me/"})
    answer = client.post("/me/book", data=_hold_form(world, slot(world.day, 10, 15)))
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "दिखाए गए समयों में से कोई एक चुनें" in html
    assert "Choose one of the times shown" not in html


def test_the_desk_may_type_a_time_off_the_grid(app, client, login, world):
    """Decision: an operator fitting a patient in types 10:15; the desk books it."""
    login(world.admin)
    start = slot(world.day, 10, 15)
    answer = client.post(
        f"/admin/visits/new/{world.patient.id}",
        data={
            "service": world.consult,
            "providers": [world.doc1],
            "clinic": world.clinic,
            "date": world.day.isoformat(),
            "time": start.astimezone(IST).strftime("%H:%M"),
            "person": "self",
            "referral": "",
            "meet_link": "",
        },
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    with app.app_context():
        assert db.session.scalars(sa.select(IndividualBooking.start_at)).one() == start
