"""A second admin's action on a visit a colleague just closed (review of the admin back
office): the refusal went into a form the page no longer draws (a paid visit's page has
no desk, coupon or "Add a service" form), so the 422 page never said what was refused.
It is now said at the top of the page (``refusal_alert``, role="alert")."""

import re

import sqlalchemy as sa

from portal.booking import coupons, prices, visits
from portal.booking.models import MasterBooking
from portal.extensions import db
from portal.payments.models import Payment
from tests.booking.factories import IST, at
from tests.plugin import sign_in
from tests.refunds.helpers import with_known_passwords


def _text(html):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _alert(response, alert_id):
    """The text of the page-level refusal ``alert_id`` (role="alert"), or None."""
    html = response.get_data(as_text=True)
    found = re.search(rf'<div class="[^"]*" role="alert" id="{alert_id}">(.*?)</div>', html, re.S)
    return _text(found.group(1)).strip() if found else None


def _two_admins_on_an_unpaid_visit(app, world, users, make_user):
    """An unpaid visit; admin A's and admin B's signed-in clients."""
    patient = users(world.patients[0])
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(4, 10),
    )
    visit_id = item.master_id
    due = prices.desk_quote(db.session.get(MasterBooking, visit_id)).amount_due
    b = make_user("admin", email="second-admin@example.com")
    with_known_passwords()
    a = users(world.admin)
    db.session.remove()
    return visit_id, due, sign_in(app, a), sign_in(app, b)


def test_a_desk_payment_on_a_visit_a_colleague_just_paid_says_it_was_not_recorded(
    app, world, users, make_user, clock
):
    """Admins A and B both have the unpaid visit open. B records desk receipt R-100. A
    then records R-101 (the patient paid twice at two counters, or A just didn't see it):
    record_desk_payment refuses ("This visit is already paid…") into the desk form, which
    a paid visit's page does not draw: A got a 422 page showing R-100 as paid and not one
    word that R-101 was refused."""
    visit_id, due, client_a, client_b = _two_admins_on_an_unpaid_visit(app, world, users, make_user)
    url = f"/admin/visits/{visit_id}/desk-payment"
    assert client_b.post(url, data={"receipt_no": "R-100", "amount": str(due)}).status_code == 303
    answer = client_a.post(url, data={"receipt_no": "R-101", "amount": str(due)})
    assert db.session.scalars(
        sa.select(Payment.receipt_no).where(Payment.kind == "DESK")
    ).all() == ["R-100"]
    assert answer.status_code == 422
    said = _alert(answer, "desk-refused")
    assert said and "not recorded" in said and "already paid" in said, _text(
        answer.get_data(as_text=True)
    )[:1200]
    # Said once: the page it came from has nothing left to say it beside.
    assert 'name="receipt_no"' not in answer.get_data(as_text=True)


def test_a_coupon_or_a_service_added_to_a_visit_a_colleague_just_paid_says_why_not(
    app, world, users, make_user, clock
):
    coupons.create_coupon(users(world.admin), code="WELCOME10", kind="PERCENT", value=1_000)
    visit_id, due, client_a, client_b = _two_admins_on_an_unpaid_visit(app, world, users, make_user)
    paid = client_b.post(
        f"/admin/visits/{visit_id}/desk-payment", data={"receipt_no": "R-100", "amount": str(due)}
    )
    assert paid.status_code == 303

    coupon = client_a.post(f"/admin/visits/{visit_id}/coupon", data={"code": "WELCOME10"})
    said = _alert(coupon, "coupon-refused")
    assert coupon.status_code == 422 and said and "not applied" in said, _text(
        coupon.get_data(as_text=True)
    )[:1200]
    assert len(said) > len("The coupon was not applied."), said  # and why

    start = at(4, 11).astimezone(IST)
    added = client_a.post(
        f"/admin/visits/{visit_id}/items",
        data={
            "service": world.consult,
            "providers": [world.doctors[0]],
            "clinic": world.clinic,
            "date": start.date().isoformat(),
            "time": start.strftime("%H:%M"),
            "person": "self",
            "referral": "",
            "meet_link": "",
        },
    )
    said = _alert(added, "item-refused")
    assert added.status_code == 422 and said and "not added" in said, _text(
        added.get_data(as_text=True)
    )[:1200]
    assert len(said) > len("The service was not added."), said
    assert len(db.session.get(MasterBooking, visit_id).items) == 1
