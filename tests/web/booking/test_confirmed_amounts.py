"""What the person confirmed on a page is what happens: the patient's pay button and the
admin's desk button carry the amounts they state, and a price that changed between the
page and the click is refused (422, the new amount shown, nothing written), as the
patient's cancellation does with the refund it showed (``expected_refund``)."""

import re
from urllib.parse import urlsplit

import sqlalchemy as sa

from portal.accounts.models import User
from portal.booking import coupons as booking_coupons
from portal.booking import visits as booking_visits
from portal.booking.models import Coupon, MasterBooking
from portal.extensions import db
from portal.payments.models import DESK, WALLET, Payment
from tests.booking.factories import quoted_checkout
from tests.web.booking.helpers import credit_wallet, hold, pay_on_sandbox

CALLBACK = "http://portal.test/visits/callback"


def _coupon(app, code, percent):
    with app.app_context():
        coupon = Coupon(code=code, kind="PERCENT", value=percent * 100)
        db.session.add(coupon)
        db.session.commit()
        return coupon.id


def _user(user):
    return db.session.get(User, user.id)


def _form(html, action):
    """The form posting to ``action`` on the page: its hidden fields and its button."""
    form = re.search(rf'<form method="post" action="[^"]*{action}".*?</form>', html, re.S)
    assert form, f"no form posting to {action}"
    fields = dict(re.findall(r'<input[^>]*type="hidden" name="([^"]+)" value="([^"]*)"', form[0]))
    button = re.search(r'<button type="submit"[^>]*>([^<]*)<', form[0])[1].strip()
    return fields, " ".join(button.split())


def _balance(app, user):
    from portal.booking.prices import wallet_balance

    with app.app_context():
        return wallet_balance(user.id)


def _payments(app, visit_id):
    with app.app_context():
        return db.session.execute(
            sa.select(Payment.kind, Payment.amount, Payment.status)
            .where(Payment.master_id == visit_id)
            .order_by(Payment.id)
        ).all()


def _status(app, visit_id):
    with app.app_context():
        return db.session.get(MasterBooking, visit_id).status


# --- the patient's pay button ---------------------------------------------------------------


def test_wallet_pay_is_refused_when_a_coupon_edit_changed_the_price_after_the_page(
    app, client, login, world
):
    """ "Confirm and pay ₹264.75 from wallet" (₹529.50, a 50% coupon, ₹1,000 typed); an
    admin edits the coupon to 10%. The click took ₹476.55 from the wallet and confirmed
    the visit at once. Now it is refused with the new amount, nothing taken; the page shown
    with it states the new amount, and that button pays it."""
    visit_id, _ = hold(app, world)
    coupon_id = _coupon(app, "HALF50", 50)
    credit_wallet(app, world.patient.id, 100_000)
    with app.app_context():
        booking_visits.apply_coupon(_user(world.patient), visit_id, "HALF50")
    login(world.patient)
    page = client.get(f"/me/visits/{visit_id}?wallet=1000").get_data(as_text=True)
    fields, button = _form(page, "/pay")
    assert button == "Confirm and pay ₹264.75 from wallet"

    with app.app_context():  # another admin edits the coupon meanwhile
        booking_coupons.update_coupon(_user(world.admin), coupon_id, value=1000)

    refused = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422, html[:300]
    assert "The price changed while this page was open" in html
    assert "₹476.55 from your wallet and ₹0 online" in html
    assert _balance(app, world.patient) == 100_000  # nothing taken
    assert _payments(app, visit_id) == [] and _status(app, visit_id) == "DRAFT"

    fields, button = _form(html, "/pay")  # the page now states the new amount
    assert button == "Confirm and pay ₹476.55 from wallet"
    paid = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    assert paid.status_code == 303 and "/confirmation" in paid.location
    assert _balance(app, world.patient) == 100_000 - 47_655


def test_pay_without_the_amounts_shown_is_asked_again_and_takes_nothing(app, client, login, world):
    """A pay post without ``shown_wallet``/``shown_online`` (a hand-made post, an old
    page): 422, the page again with the button's amounts, nothing reserved or paid."""
    visit_id, _ = hold(app, world)
    credit_wallet(app, world.patient.id, 60_000)
    login(world.patient)
    answer = client.post(f"/me/visits/{visit_id}/pay", data={"wallet": "529.50"})
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "Check the amount on the pay button, then confirm again." in html
    fields, _button = _form(html, "/pay")
    assert (fields["shown_wallet"], fields["shown_online"]) == ("52950", "0")
    assert _payments(app, visit_id) == []
    assert _balance(app, world.patient) == 60_000
    assert _status(app, visit_id) == "DRAFT"


def test_online_pay_is_refused_when_the_coupon_went_away_in_another_tab(
    app, client, login, world, gateway
):
    """The gateway part too: "Pay ₹476.55" (a 10% coupon); the coupon is removed in
    another tab; the click would have sent ₹529.50 to the gateway. Refused, no order."""
    visit_id, _ = hold(app, world)
    _coupon(app, "SAVE10", 10)
    with app.app_context():
        booking_visits.apply_coupon(_user(world.patient), visit_id, "SAVE10")
    login(world.patient)
    fields, button = _form(client.get(f"/me/visits/{visit_id}").get_data(as_text=True), "/pay")
    assert button == "Pay ₹476.55"

    with app.app_context():  # the other tab
        booking_visits.remove_coupon(_user(world.patient), visit_id)

    refused = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "it is now ₹529.50, not the ₹476.55 shown" in html
    assert _payments(app, visit_id) == [] and _status(app, visit_id) == "DRAFT"
    fields, button = _form(html, "/pay")
    assert button == "Pay ₹529.50"
    again = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    assert again.status_code == 303 and "/sandbox/checkout/" in again.location


def test_back_from_the_gateway_the_pay_form_pays_the_same_order(app, client, login, world, gateway):
    """Back unpaid, "Pay ₹329.50" (₹200 of the wallet reserved) posts the order's wallet
    part and the amounts shown: the same order again, nothing refused."""
    visit_id, _ = hold(app, world)
    credit_wallet(app, world.patient.id, 20_000)
    login(world.patient)
    page = client.get(f"/me/visits/{visit_id}?wallet=200").get_data(as_text=True)
    fields, button = _form(page, "/pay")
    assert button == "Pay ₹329.50"
    first = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    assert first.status_code == 303
    back = urlsplit(pay_on_sandbox(client, first.location, outcome="failure"))
    client.get(back.path, query_string=back.query)

    fields, button = _form(client.get(f"/me/visits/{visit_id}").get_data(as_text=True), "/pay")
    assert button == "Pay ₹329.50"
    again = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    assert again.status_code == 303 and again.location == first.location  # the same order
    orders = [p for p in _payments(app, visit_id) if p.kind != WALLET]
    assert [(p.amount, p.status) for p in orders] == [(32_950, "PENDING")]


def test_another_wallet_amount_while_an_order_is_pending_shows_and_pays_the_new_split(
    app, client, login, world, gateway
):
    """An order with ₹200 of the wallet is pending; the patient asks for ₹300 instead. The
    page shows what the click does (₹229.50 online, the order replaced), not the pending
    order's split; the click does just that."""
    visit_id, _ = hold(app, world)
    credit_wallet(app, world.patient.id, 50_000)
    login(world.patient)
    with app.app_context():
        quoted_checkout(_user(world.patient), visit_id, 20_000, callback_url=CALLBACK)
    page = client.get(f"/me/visits/{visit_id}?wallet=300").get_data(as_text=True)
    fields, button = _form(page, "/pay")
    assert button == "Pay ₹229.50"
    again = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    assert again.status_code == 303, again.get_data(as_text=True)[:300]
    pending = [(p.kind, p.amount) for p in _payments(app, visit_id) if p.status == "PENDING"]
    assert sorted(pending) == [("ORDER", 22_950), ("WALLET", 30_000)]


# --- the admin's desk button -----------------------------------------------------------------


def test_desk_payment_is_refused_when_the_amount_due_changed_after_the_page(
    app, client, login, world
):
    """ "Record desk payment of ₹529.50"; the patient applies a 10% coupon meanwhile. The
    click recorded ₹476.55 (the fresh amount): the drawer held ₹52.95 more than the
    ledger's cash desk. Now it is refused with the new amount; nothing recorded."""
    visit_id, _ = hold(app, world)
    _coupon(app, "SAVE10", 10)
    login(world.admin)
    fields, button = _form(
        client.get(f"/admin/visits/{visit_id}").get_data(as_text=True), "desk-payment"
    )
    assert button == "Record desk payment of ₹529.50"

    with app.app_context():  # the patient, in their own browser
        booking_visits.apply_coupon(_user(world.patient), visit_id, "SAVE10")

    refused = client.post(
        f"/admin/visits/{visit_id}/desk-payment", data={**fields, "receipt_no": "R-1001"}
    )
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "The amount due is now ₹476.55, not the ₹529.50 shown" in html
    assert _payments(app, visit_id) == [] and _status(app, visit_id) == "DRAFT"

    fields, button = _form(html, "desk-payment")
    assert button == "Record desk payment of ₹476.55"
    paid = client.post(
        f"/admin/visits/{visit_id}/desk-payment", data={**fields, "receipt_no": "R-1001"}
    )
    assert paid.status_code == 303
    assert _payments(app, visit_id) == [(DESK, 47_655, "SUCCESSFUL")]


def test_desk_payment_without_a_confirmed_amount_is_not_recorded(app, client, login, world):
    """A post without the button's ``amount``: 422, asked again (the service's refusal,
    ``record_desk_payment``'s required ``confirmed_amount``), nothing recorded; the page's
    own fields record it."""
    visit_id, _ = hold(app, world)
    login(world.admin)
    answer = client.post(f"/admin/visits/{visit_id}/desk-payment", data={"receipt_no": "R-9"})
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "Check the amount on the button and record the desk payment again." in html
    assert "Record desk payment of ₹529.50" in html
    assert _payments(app, visit_id) == []
    assert _status(app, visit_id) == "DRAFT"
    fields, _button = _form(html, "desk-payment")
    paid = client.post(
        f"/admin/visits/{visit_id}/desk-payment", data={**fields, "receipt_no": "R-9"}
    )
    assert paid.status_code == 303
    assert _payments(app, visit_id) == [(DESK, 52_950, "SUCCESSFUL")]


def test_desk_button_states_the_whole_amount_recorded_while_a_checkout_is_pending(
    app, client, login, world, gateway
):
    """The patient started paying with ₹200 from the wallet (an order of ₹329.50
    pending). The button said ₹329.50 (the pending split) while the click gives the ₹200
    back and records ₹529.50 in cash. The button states the ₹529.50 recorded, and says
    the wallet part goes back."""
    visit_id, _ = hold(app, world)
    credit_wallet(app, world.patient.id, 20_000)
    with app.app_context():
        quoted_checkout(_user(world.patient), visit_id, 20_000, callback_url=CALLBACK)
    login(world.admin)
    html = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    fields, button = _form(html, "desk-payment")
    assert button == "Record desk payment of ₹529.50"
    assert "₹200 reserved from the patient's wallet goes back to it" in " ".join(html.split())

    paid = client.post(
        f"/admin/visits/{visit_id}/desk-payment", data={**fields, "receipt_no": "R-2002"}
    )
    assert paid.status_code == 303
    desk = [p for p in _payments(app, visit_id) if p.kind == DESK]
    assert [(p.amount, p.status) for p in desk] == [(52_950, "SUCCESSFUL")]
    assert _balance(app, world.patient) == 20_000
