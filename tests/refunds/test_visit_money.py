"""Issue #16: a paid visit showed its whole price as "Amount due" (after paying, and still
after a partial refund) on the patient's and the admin's visit page. ``visit_money`` says
paid, refunded and due; both pages show it."""

import re

from portal.booking.models import MasterBooking
from portal.extensions import db
from portal.refunds.queries import visit_money
from tests.refunds.helpers import cancel_as_patient, login
from tests.refunds.test_refunds_web import setup  # noqa: F401  (the paid three-item visit)


def _row(html, element_id):
    found = re.search(rf'id="{element_id}">(?:<[^>]+>)?([^<]+)<', html)
    return found and found.group(1).strip()


def test_a_paid_visit_owes_nothing_and_a_refund_shows(app, client, setup, clock):  # noqa: F811
    visit_id, ids, emails = setup
    with app.app_context():
        money = visit_money(db.session.get(MasterBooking, visit_id))
        assert money.due == 0 and money.paid == money.price > 0 and money.refunded == 0
        price = money.price
    login(client, emails["patient"])
    html = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    assert _row(html, "amount-due") == "₹0"
    assert _row(html, "amount-paid") == app.jinja_env.filters["inr"](price)

    done = cancel_as_patient(client, visit_id, [ids[0]], "wallet", reason="Better")
    assert done.status_code == 303
    with app.app_context():
        money = visit_money(db.session.get(MasterBooking, visit_id))
        assert money.refunded > 0 and money.due == 0 and money.paid == price
        refunded = app.jinja_env.filters["inr"](money.refunded)
    html = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    assert _row(html, "amount-due") == "₹0"
    assert _row(html, "amount-refunded") == "−" + refunded

    client.post("/auth/logout")
    login(client, emails["admin"])
    admin = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    assert _row(admin, "amount-due") == "₹0"
    assert _row(admin, "amount-refunded") == "−" + refunded


def test_a_paid_visits_wallet_part_is_shown_inside_paid_not_taken_off(
    app, client, world, users, gateway, clock
):
    """Paid ₹529.50, ₹200 of it from the wallet: the page showed "From your wallet −₹200"
    above "Paid ₹529.50", the wallet counted twice (review finding, walking the demo)."""
    from tests.booking.factories import at, credit_wallet
    from tests.refunds.helpers import book_and_pay, with_known_passwords

    with_known_passwords()
    patient = users(world.patients[0])
    credit_wallet(patient.id, 20_000)
    visit = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], at(3, 10))], wallet=20_000
    )
    visit_id, email = visit.id, patient.email
    db.session.commit()
    login(client, email)
    html = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    assert _row(html, "amount-paid") == "₹529.50"
    assert _row(html, "amount-paid-wallet") == "₹200"
    assert "−₹200" not in html
