"""The provider's share of a reschedule fee is an earning on /provider/earnings (review
finding: POLICY.md "The penalty, less commission, goes to the provider", and the ledger
credits it to the payable when the fee is paid, but "Weekly earnings" and "Earnings per
appointment" counted only completion credits: a moved-and-completed ₹500 consultation
showed ₹475 for the week while the provider earned ₹522.50; a give-back of that fee was
listed under "Penalties" all the same). The share is its own line ("Reschedule fee
share", English and Hindi) and counts in the week it was paid; the page reads it with the
completions, no statement more."""

import re

from flask_babel import refresh

from portal.booking.models import IndividualBooking
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.payouts import completion
from tests.booking.factories import at, credit_wallet
from tests.querycount import counted_queries
from tests.refunds.helpers import book_and_pay, hours, login, quoted_move, with_known_passwords

START = at(4, 10)


def _section(html, name):
    return re.search(rf'id="{name}".*?</section>', html, re.S).group(0)


def _moved_and_completed(world, users, gateway, clock, start=START, new=at(4, 14)):
    """A ₹500 consultation moved 60 h ahead (10 %: ₹50 penalty, ₹47.50 share after 5 %
    commission) from the wallet, then completed: the doctor's user."""
    patient = users(world.patients[0])
    item = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], start)])
    item = item.items[0]
    credit_wallet(patient.id, 100_000)
    clock.move_to(start - hours(60))
    quoted_move(patient, item.id, new, pay_with="wallet")
    doctor = users(db.session.get(IndividualBooking, item.id).providers[0].user_id)
    clock.move_to(new - hours(0, 30))
    completion.start_booking(doctor, item.id)
    clock.move_to(new + hours(0, 20))
    completion.complete_booking(doctor, item.id)
    return doctor


def test_earnings_page_counts_the_reschedule_fee_share(app, client, world, users, gateway, clock):
    doctor = _moved_and_completed(world, users, gateway, clock)
    assert balance(chart.provider_payable(world.doctors[0])) == 47_500 + 4_750
    email = doctor.email
    with_known_passwords()
    db.session.remove()
    login(client, email)
    html = client.get("/provider/earnings").get_data(as_text=True)
    weekly, earnings = _section(html, "weekly"), _section(html, "earnings")
    assert "₹522.50" in weekly, re.findall(r"₹[\d,.]+", weekly)
    assert "₹47.50" in earnings, re.findall(r"₹[\d,.]+", earnings)
    rows = re.findall(r"<tr>.*?</tr>", earnings.split("<tbody>", 1)[1], re.S)
    assert len(rows) == 2
    fee_row = next(r for r in rows if "Reschedule fee share" in r)
    # The share of the ₹50 penalty, and the earning: that share less 5 % commission.
    assert re.findall(r"₹[\d,.]+", fee_row) == ["₹50", "₹47.50"]
    client.post("/language", data={"language": "hi", "next": "/"})
    refresh()  # the test's app context outlives the requests, and Babel's locale with it
    hindi = _section(client.get("/provider/earnings").get_data(as_text=True), "earnings")
    assert "समय बदलने के शुल्क में हिस्सा" in hindi
    assert "Reschedule fee share" not in hindi


def test_the_fee_shares_cost_the_earnings_page_no_statement_more(
    app, client, world, users, gateway, clock
):
    """Read with the completions (one statement, the reschedule joined): the same number
    of statements with one moved booking as with two. (The statement above it named each
    appointment with a statement of its own, its visit and patient read lazily: now read
    with its bookings.) The page without earnings keeps its budget
    (tests/web/test_query_budgets.py)."""
    doctor = _moved_and_completed(world, users, gateway, clock)
    with_known_passwords()
    login(client, doctor.email)

    def count():
        client.get("/provider/earnings")  # warm: templates compiled, caches filled
        with counted_queries() as statements:
            html = client.get("/provider/earnings").get_data(as_text=True)
        return len(statements), _section(html, "earnings").count("Reschedule fee share")

    one = count()
    _moved_and_completed(world, users, gateway, clock, start=at(7, 10), new=at(7, 14))
    db.session.commit()
    two = count()
    assert (one[1], two[1]) == (1, 2)
    assert one[0] == two[0]
