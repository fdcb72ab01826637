"""The pages where a guardian acts on a dependent's appointment — cancel it, see its refunds,
move it — say whose appointment it is, under their heading, as the visit page does ("For
Aarav", the visit page's own words: `_macros.for_whom`). Review finding: they showed only
the service and the time, so a parent of two, arriving from a notice's or a mail's link,
cancelled or moved without being told for whom."""

import pytest

from tests.web.booking.helpers import credit_wallet, hold, pay_fields

PAGES = [
    "/me/visits/{visit}/cancel",
    "/me/visits/{visit}/refunds",
    "/me/bookings/{item}/reschedule",
]


def _paid(app, client, login, world, dependent):
    credit_wallet(app, world.patient.id, 100_000)
    login(world.patient)
    visit_id, item_id = hold(app, world, dependent=dependent)
    paid = client.post(f"/me/visits/{visit_id}/pay", data=pay_fields(client, visit_id, "529.50"))
    assert paid.status_code == 303
    return visit_id, item_id


@pytest.fixture
def childs_visit(app, client, login, world):
    visit_id, item_id = _paid(app, client, login, world, world.child)
    assert "Aarav" in client.get(f"/me/visits/{visit_id}").text  # the visit page names him
    return visit_id, item_id


@pytest.mark.parametrize("page", PAGES)
def test_the_pages_acting_on_a_dependents_appointment_name_the_dependent(
    client, childs_visit, page
):
    visit_id, item_id = childs_visit
    response = client.get(page.format(visit=visit_id, item=item_id))
    assert response.status_code == 200
    assert '<p class="muted" id="for-whom">For Aarav</p>' in response.text, page


@pytest.mark.parametrize("page", PAGES)
def test_in_hindi_they_name_the_dependent_in_hindi(client, childs_visit, page):
    visit_id, item_id = childs_visit
    client.post("/language", data={"language": "hi", "next": "/me/"})
    response = client.get(page.format(visit=visit_id, item=item_id))
    assert response.status_code == 200
    assert 'id="for-whom">Aarav के लिए</p>' in response.text, page


@pytest.mark.parametrize("page", PAGES)
def test_the_patients_own_appointment_needs_no_such_line(app, client, login, world, page):
    visit_id, item_id = _paid(app, client, login, world, None)
    response = client.get(page.format(visit=visit_id, item=item_id))
    assert response.status_code == 200
    assert 'id="for-whom"' not in response.text, page
