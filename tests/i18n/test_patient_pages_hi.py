"""The patient's home and an unpaid visit in Hindi: whom each visit on the home is for, and
why ₹1 is left to pay online, on the visit's page and on it again while its order is
pending, the amount written as pages write money."""

import re
from urllib.parse import urlsplit

import sqlalchemy as sa

from portal.extensions import db
from tests.i18n.test_language import WORLD_DATA, _numbers
from tests.i18n.untranslated import untranslated
from tests.web.booking.helpers import credit_wallet, hold, pay_fields, pay_on_sandbox, slot

SENTENCE = re.compile(r'<p class="muted" id="online-minimum">([^<]*)</p>')


def _in_hindi(client, login, world):
    login(world.patient)
    client.post("/language", data={"language": "hi", "next": "/"})


def _checked_out_and_back_unpaid(client, visit_id, wallet):
    paying = client.post(f"/me/visits/{visit_id}/pay", data=pay_fields(client, visit_id, wallet))
    assert paying.status_code == 303 and "/sandbox/checkout/" in paying.location
    back = urlsplit(pay_on_sandbox(client, paying.location, outcome="failure"))
    assert client.get(back.path, query_string=back.query).status_code == 303


def test_the_pending_payment_page_says_in_hindi_why_a_rupee_is_left_online(
    app, client, login, world, gateway
):
    """₹529 of the wallet on ₹529.50: ₹1 goes online. Back from the gateway unpaid, the
    page asked for ₹1 and said nothing of why (it said so only before the checkout)."""
    visit_id, _ = hold(app, world)
    credit_wallet(app, world.patient.id, 52_900)
    _in_hindi(client, login, world)
    before = client.get(f"/me/visits/{visit_id}?wallet=529").get_data(as_text=True)
    _checked_out_and_back_unpaid(client, visit_id, "529")
    page = client.get(f"/me/visits/{visit_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    said = "ऑनलाइन भुगतान कम से कम ₹1 का होता है, इसलिए आपका कूपन या वॉलेट"
    assert said in SENTENCE.search(before).group(1)
    assert said in SENTENCE.search(html).group(1)
    assert untranslated(html, data=WORLD_DATA | _numbers(app, visit_id)) == []


def test_the_hindi_sentence_names_the_minimum_the_rule_sets(app, client, login, world, monkeypatch):
    """The amount is ``MIN_ONLINE_PAYMENT`` through the money formatter, in Hindi as in
    English (the catalogue's sentence had "₹1.00" typed into it)."""
    from portal.domain import pricing

    monkeypatch.setattr(pricing, "MIN_ONLINE_PAYMENT", 200)
    visit_id, _ = hold(app, world)
    credit_wallet(app, world.patient.id, 52_900)
    _in_hindi(client, login, world)
    html = client.get(f"/me/visits/{visit_id}?wallet=529").get_data(as_text=True)
    assert "ऑनलाइन भुगतान कम से कम ₹2 का होता है" in SENTENCE.search(html).group(1)


def test_the_home_says_in_hindi_whom_each_visit_is_for(app, client, login, world):
    """The account holder's own visit reads "आप" (you), the child's its name; nothing in
    English is left on the home."""
    from portal.booking.models import MasterBooking
    from portal.domain.states import VisitStatus

    own, _ = hold(app, world, start=slot(world.day, 10))
    child, _ = hold(app, world, start=slot(world.day, 11), dependent=world.child)
    unpaid, _ = hold(app, world, start=slot(world.day, 12), dependent=world.child)
    with app.app_context():  # set-up: the home's lists read statuses only
        db.session.execute(
            sa.update(MasterBooking)
            .where(MasterBooking.id.in_([own, child]))
            .values(status=VisitStatus.CONFIRMED)
        )
        db.session.commit()
    _in_hindi(client, login, world)
    html = client.get("/me/").get_data(as_text=True)
    rows = dict(
        re.findall(
            r'<td data-label="[^"]+">(V\d+)</td>\s*<td data-label="किसके लिए">([^<]*)</td>', html
        )
    )
    numbers = {visit_id: _numbers(app, visit_id) - {"—"} for visit_id in (own, child, unpaid)}
    assert {rows[n] for n in numbers[own]} == {"आप"}
    assert {rows[n] for n in numbers[child] | numbers[unpaid]} == {"Aarav"}
    data = WORLD_DATA | set().union(*numbers.values())
    assert untranslated(html, data=data) == []


def test_a_price_changed_before_the_click_is_said_in_hindi(app, client, login, world):
    """The pay button's amounts no longer hold (the coupon removed in another tab): the
    refusal says so in Hindi, with the new amounts."""
    from portal.accounts.models import User
    from portal.booking import visits as booking_visits
    from portal.booking.models import Coupon

    visit_id, _ = hold(app, world)
    credit_wallet(app, world.patient.id, 100_000)
    with app.app_context():
        db.session.add(Coupon(code="SAVE10", kind="PERCENT", value=1000))
        db.session.commit()
        booking_visits.apply_coupon(db.session.get(User, world.patient.id), visit_id, "SAVE10")
    _in_hindi(client, login, world)
    page = client.get(f"/me/visits/{visit_id}?wallet=1000").get_data(as_text=True)
    form = re.search(r'<form method="post" action="[^"]*/pay".*?</form>', page, re.S)[0]
    fields = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form))
    with app.app_context():
        booking_visits.remove_coupon(db.session.get(User, world.patient.id), visit_id)
    refused = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "कीमत बदल गई: अब वॉलेट से ₹529.50 और ऑनलाइन ₹0 है, ₹476.55 और ₹0 नहीं" in html
    assert "The price changed" not in html


def _paid_from_wallet(app, client, world):
    """A visit held and paid from the wallet through the page's own pay form."""
    visit_id, item_id = hold(app, world)
    credit_wallet(app, world.patient.id, 100_000)
    page = client.get(f"/me/visits/{visit_id}?wallet=1000").get_data(as_text=True)
    form = re.search(r'<form method="post" action="[^"]*/pay".*?</form>', page, re.S)[0]
    fields = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form))
    assert client.post(f"/me/visits/{visit_id}/pay", data=fields).status_code == 303
    return visit_id, item_id


def test_the_errors_beside_the_pay_and_move_forms_are_in_hindi(app, client, login, world):
    """Browser walk (session 26): the errors put beside the reschedule page's time and fee
    choice, and beside the pay button's wallet amount, were printed without ``|t``: a
    Hindi patient read "Choose a new time", "Choose how to pay the reschedule fee" and
    "Enter an amount in rupees" in English."""
    _in_hindi(client, login, world)
    visit_id, item_id = _paid_from_wallet(app, client, world)
    moved = client.post(f"/me/bookings/{item_id}/reschedule", data={"shown_fee": "0"})
    html = moved.get_data(as_text=True)
    assert moved.status_code == 422
    assert "Choose a new time" not in html
    assert untranslated(html, data=WORLD_DATA | _numbers(app, visit_id)) == []
    other_id, _ = hold(app, world, start=slot(world.day, 12))
    paying = client.post(f"/me/visits/{other_id}/pay", data={"wallet": "abc"})
    html = paying.get_data(as_text=True)
    assert paying.status_code == 422
    assert '<p class="error" role="alert">रुपये में राशि दर्ज करें, जैसे 250 या 250.50।</p>' in html


def test_the_book_page_says_with_whom_in_hindi_word_order(client, login, world):
    """Review finding: the book page joined "with" and the name in English order ("के साथ
    Bengaluru Diagnostics"); Hindi puts the name first, as the visit page does."""
    from tests.web.booking.helpers import book_url

    _in_hindi(client, login, world)
    html = client.get(book_url(world)).get_data(as_text=True)
    assert "<strong>Dr Asha Rao</strong> के साथ" in html
    assert "के साथ <strong>Dr Asha Rao</strong>" not in html
    client.set_cookie("lang", "en")
    client.post("/language", data={"language": "en", "next": "/"})
    assert "with <strong>Dr Asha Rao</strong>" in client.get(book_url(world)).get_data(as_text=True)
