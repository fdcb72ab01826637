"""The patient's /me/wallet lines about a checkout name their visit (review H: the
checkout's postings are referenced by their payment, which named nothing).

docs/refunds.md (routes): "GET /me/wallet … a line about a visit (a reschedule fee, a
refund of an appointment, money used at checkout) names the visit and links to it"."""

import re

import pytest

from portal.booking.models import MasterBooking
from portal.extensions import db
from tests.web.booking.helpers import credit_wallet, hold, pay_fields


@pytest.fixture(autouse=True)
def _sound(ledger_stays_sound):
    """Money moves: the ledger must balance afterwards."""


def _lines(html):
    table = re.search(r'id="wallet-history".*?</table>', html, re.S)
    assert table, "no wallet history"
    return re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S)[1:]


def test_wallet_lines_of_a_checkout_name_and_link_the_visit(app, client, login, world, gateway):
    """Part of the wallet applied to a visit (the rest online), then the checkout started
    again with another wallet amount: the wallet page has a "Used at checkout" line for
    each reservation and a "Returned from an unfinished checkout" line for the release;
    each is about that visit and should name it ("Visit V…") and link to its page."""
    patient = world.patient
    credit_wallet(app, patient.id, 30_000)
    visit_id, _ = hold(app, world)
    with app.app_context():
        number = db.session.get(MasterBooking, visit_id).number
        db.session.remove()
    login(patient)
    first = client.post(f"/me/visits/{visit_id}/pay", data=pay_fields(client, visit_id, "200"))
    assert first.status_code == 303 and "/sandbox/checkout/" in first.location
    again = client.post(f"/me/visits/{visit_id}/pay", data=pay_fields(client, visit_id, "100"))
    assert again.status_code == 303 and "/sandbox/checkout/" in again.location

    page = client.get("/me/wallet").get_data(as_text=True)
    checkout_lines = [
        line
        for line in _lines(page)
        if "Used at checkout" in line or "Returned from an unfinished checkout" in line
    ]
    assert len(checkout_lines) == 3, checkout_lines
    for line in checkout_lines:
        assert f"Visit {number}" in line and f'href="/me/visits/{visit_id}"' in line, re.sub(
            r"\s+", " ", re.sub("<[^>]+>", " ", line)
        )
