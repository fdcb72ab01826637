"""A coupon that stopped being usable (deactivated, expired, used up by others) while an
unpaid visit has it applied: the visit's page says plainly that it is no longer valid and
states the total without it, and the pay button pays that total. The coupon leaves the
visit at the payment (the next write), not when the page is shown (a GET writes nothing);
its use count is not consumed (docs/booking.md "Prices, coupons, wallet")."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.booking import coupons as booking_coupons
from portal.booking import visits as booking_visits
from portal.booking.models import Coupon, CouponRedemption, MasterBooking
from portal.db import utcnow
from portal.extensions import db
from portal.payments.models import Payment
from tests.booking.factories import quoted_checkout
from tests.web.booking.helpers import credit_wallet, hold, pay_on_sandbox

LAPSED = "Coupon SAVE10 is no longer valid, so nothing is taken off"


@pytest.fixture(autouse=True)
def _ledger_sound(ledger_stays_sound):
    """Every test here ends with a balanced, sound ledger."""


def _user(user):
    return db.session.get(User, user.id)


def _form(html, action):
    form = re.search(rf'<form method="post" action="[^"]*{action}".*?</form>', html, re.S)
    assert form, f"no form posting to {action}"
    fields = dict(re.findall(r'<input[^>]*type="hidden" name="([^"]+)" value="([^"]*)"', form[0]))
    button = re.search(r'<button type="submit"[^>]*>([^<]*)<', form[0])[1].strip()
    return fields, " ".join(button.split())


def _applied(app, world, visit_id, **coupon):
    """SAVE10 (10%) applied to the visit while it was valid; returns its id."""
    with app.app_context():
        row = Coupon(code="SAVE10", kind="PERCENT", value=1_000, **coupon)
        db.session.add(row)
        db.session.commit()
        booking_visits.apply_coupon(_user(world.patient), visit_id, "SAVE10")
        return row.id


def _visit(app, visit_id):
    with app.app_context():
        visit = db.session.get(MasterBooking, visit_id)
        return visit.status, visit.coupon_id, visit.discount


def _coupon_uses(app, coupon_id):
    with app.app_context():
        used = db.session.get(Coupon, coupon_id).used_count
        redemptions = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(CouponRedemption)
            .where(CouponRedemption.coupon_id == coupon_id)
        )
        return used, redemptions


def _payments(app, visit_id):
    with app.app_context():
        return db.session.execute(
            sa.select(Payment.kind, Payment.amount, Payment.status)
            .where(Payment.master_id == visit_id)
            .order_by(Payment.id)
        ).all()


def test_a_coupon_deactivated_after_it_was_applied_is_said_so_and_the_visit_paid_without_it(
    app, client, login, world, gateway
):
    """SAVE10 applied (₹476.55 to pay); an admin deactivates it. The page said "Pay
    ₹476.55" and every click was refused "This coupon is no longer active". Now it says
    the coupon is no longer valid, states ₹529.50 and that button pays it; the coupon
    leaves the visit at the payment, its use count untouched."""
    visit_id, _ = hold(app, world)
    coupon_id = _applied(app, world, visit_id)
    with app.app_context():
        booking_coupons.update_coupon(_user(world.admin), coupon_id, active=False)
    login(world.patient)
    page = client.get(f"/me/visits/{visit_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert LAPSED in html and "This coupon is no longer active" in html
    assert "−₹52.95" not in html
    assert re.search(r'id="amount-due">₹529.50<', html)
    fields, button = _form(html, "/pay")
    assert button == "Pay ₹529.50"
    assert (fields["shown_wallet"], fields["shown_online"]) == ("0", "52950")
    # Another code may be applied, or this one removed by hand; paying needs neither.
    assert f'action="/me/visits/{visit_id}/coupon"' in html
    assert f'action="/me/visits/{visit_id}/coupon/remove"' in html
    # Shown only: the GET wrote nothing, the coupon is still on the visit.
    assert _visit(app, visit_id) == ("DRAFT", coupon_id, 5_295)

    paid = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    assert paid.status_code == 303, paid.get_data(as_text=True)[:400]
    assert "/sandbox/checkout/" in paid.location
    assert _payments(app, visit_id) == [("ORDER", 52_950, "PENDING")]
    assert _visit(app, visit_id) == ("PENDING_PAYMENT", None, 0)
    assert _coupon_uses(app, coupon_id) == (0, 0)
    with app.app_context():
        audit = db.session.scalar(
            sa.select(AuditEntry).where(
                AuditEntry.action == "visit.coupon_lapsed", AuditEntry.object_id == str(visit_id)
            )
        )
        assert audit is not None and audit.before == {"coupon": "SAVE10", "discount": 5_295}

    back = urlsplit(pay_on_sandbox(client, paid.location))
    client.get(back.path, query_string=back.query)
    assert _visit(app, visit_id)[0] == "CONFIRMED"
    assert _payments(app, visit_id) == [("ORDER", 52_950, "SUCCESSFUL")]
    assert _coupon_uses(app, coupon_id) == (0, 0)


def test_an_expired_coupon_leaves_a_wallet_payment_of_the_whole_total(app, client, login, world):
    """The coupon's end passed while the visit waited: "Confirm and pay ₹529.50 from
    wallet" takes ₹529.50 from the wallet, not ₹476.55, and is not refused."""
    visit_id, _ = hold(app, world)
    coupon_id = _applied(app, world, visit_id, valid_until=utcnow() + timedelta(days=1))
    with app.app_context():
        db.session.get(Coupon, coupon_id).valid_until = utcnow() - timedelta(minutes=1)
        db.session.commit()
    credit_wallet(app, world.patient.id, 100_000)
    login(world.patient)
    html = client.get(f"/me/visits/{visit_id}?wallet=1000").get_data(as_text=True)
    assert LAPSED in html and "This coupon has expired" in html
    fields, button = _form(html, "/pay")
    assert button == "Confirm and pay ₹529.50 from wallet"
    paid = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    assert paid.status_code == 303 and "/confirmation" in paid.location
    from portal.booking.prices import wallet_balance

    with app.app_context():
        assert wallet_balance(world.patient.id) == 100_000 - 52_950
    assert _visit(app, visit_id) == ("CONFIRMED", None, 0)
    assert _coupon_uses(app, coupon_id) == (0, 0)


def test_a_coupon_used_up_by_another_patient_is_no_longer_valid_here(
    app, client, login, world, gateway
):
    """One use allowed; another patient paid with it first. This visit's page says so
    and pays the whole total; the other patient's use stays the only one."""
    visit_id, _ = hold(app, world)
    coupon_id = _applied(app, world, visit_id, max_uses=1)
    other_visit, _ = hold(app, world, patient=world.other, start=None, provider=world.doc2)
    credit_wallet(app, world.other.id, 100_000)
    with app.app_context():
        booking_visits.apply_coupon(_user(world.other), other_visit, "SAVE10")

        quoted_checkout(_user(world.other), other_visit, 100_000, callback_url="http://x/cb")
    assert _coupon_uses(app, coupon_id) == (1, 1)
    login(world.patient)
    html = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    assert LAPSED in html and "This coupon has reached its usage limit" in html
    fields, button = _form(html, "/pay")
    assert button == "Pay ₹529.50"
    paid = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    assert paid.status_code == 303 and "/sandbox/checkout/" in paid.location
    assert _payments(app, visit_id) == [("ORDER", 52_950, "PENDING")]
    assert _coupon_uses(app, coupon_id) == (1, 1)


def test_a_coupon_still_valid_is_shown_and_taken_as_before(app, client, login, world, gateway):
    """The check withdraws only what lapsed: a valid coupon is applied, stated and used."""
    visit_id, _ = hold(app, world)
    coupon_id = _applied(app, world, visit_id)
    login(world.patient)
    html = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    assert "no longer valid" not in html and "−₹52.95" in html
    fields, button = _form(html, "/pay")
    assert button == "Pay ₹476.55"
    paid = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    assert paid.status_code == 303
    assert _visit(app, visit_id) == ("PENDING_PAYMENT", coupon_id, 5_295)
    assert _coupon_uses(app, coupon_id) == (1, 1)


def test_the_lapsed_coupon_is_said_in_hindi_to_a_hindi_reader(app, client, login, world):
    visit_id, _ = hold(app, world)
    coupon_id = _applied(app, world, visit_id)
    with app.app_context():
        booking_coupons.update_coupon(_user(world.admin), coupon_id, active=False)
    login(world.patient)
    client.post("/language", data={"language": "hi", "next": "/me/"})
    html = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    assert "no longer valid" not in html and "no longer active" not in html
    assert "कूपन SAVE10 अब मान्य नहीं है" in html
    assert "₹529.50" in html
    # Review rev4: the notice joined two messages and a literal "." ("… सक्रिय नहीं है."):
    # one message now, ending with a danda in Hindi.
    notice = re.search(r'id="coupon-lapsed">(.*?)</p>', html, re.S)[1].strip()
    assert notice.endswith("यह कूपन अब सक्रिय नहीं है।"), notice


def test_the_lapsed_coupon_notice_is_one_sentence_in_english(app, client, login, world):
    visit_id, _ = hold(app, world)
    coupon_id = _applied(app, world, visit_id)
    with app.app_context():
        booking_coupons.update_coupon(_user(world.admin), coupon_id, active=False)
    login(world.patient)
    html = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    notice = re.search(r'id="coupon-lapsed">(.*?)</p>', html, re.S)[1].strip()
    assert notice.startswith(LAPSED) and notice.endswith(
        "that is what you pay. This coupon is no longer active."
    ), notice


def _linked(app, world, visit_id):
    """SAVE10 applied, a payment link sent for ₹476.55, then the coupon deactivated."""
    from portal.booking import links

    coupon_id = _applied(app, world, visit_id)
    with app.app_context():
        link = links.create_payment_link(_user(world.admin), visit_id)
        link_url = link.link_url
        booking_coupons.update_coupon(_user(world.admin), coupon_id, active=False)
    return coupon_id, link_url


def test_an_open_payment_link_keeps_the_coupons_price_on_every_page(
    app, client, login, world, gateway
):
    """Before: the link sent by SMS and mail asked ₹476.55 while the visit's page said
    the coupon was gone and "Pay ₹529.50" (a new order, the link cancelled): two amounts
    for one visit, each charged as stated. Now the link's offer stands until it ends: the
    page states ₹476.55 and says why, its Pay opens that link (no second payable thing),
    and the admin's page says the same."""
    visit_id, _ = hold(app, world)
    coupon_id, link_url = _linked(app, world, visit_id)
    login(world.patient)
    html = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    notice = re.search(r'id="coupon-link-kept">(.*?)</p>', html, re.S)
    assert notice, "no word of the open link"
    assert "Coupon SAVE10 is no longer valid, but the payment link for ₹476.55" in notice[1]
    assert "This coupon is no longer active." in notice[1]
    assert LAPSED not in html
    assert re.search(r'id="amount-due">₹476.55<', html)
    fields, button = _form(html, "/pay")
    assert button == "Pay ₹476.55"
    assert (fields["shown_wallet"], fields["shown_online"]) == ("0", "47655")
    paid = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    assert paid.status_code == 303 and paid.location.endswith(urlsplit(link_url).path)
    assert _payments(app, visit_id) == [("LINK", 47_655, "PENDING")]
    assert _visit(app, visit_id) == ("PENDING_PAYMENT", coupon_id, 5_295)

    login(world.admin)
    admin_html = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    kept = re.search(r'id="coupon-link-kept">(.*?)</p>', admin_html, re.S)
    assert kept and "Coupon SAVE10 is no longer valid" in kept[1] and "₹476.55" in kept[1]
    assert re.search(r'id="amount-due">₹476.55<', admin_html)


def test_asking_for_the_wallet_beside_an_open_link_is_priced_without_the_lapsed_coupon(
    app, client, login, world, gateway
):
    """The link has no wallet part: a wallet asked for is another request, priced now,
    as for a pending order (the coupon left out, said so); paying it replaces the link."""
    visit_id, _ = hold(app, world)
    _linked(app, world, visit_id)
    credit_wallet(app, world.patient.id, 10_000)
    login(world.patient)
    html = client.get(f"/me/visits/{visit_id}?wallet=100").get_data(as_text=True)
    assert LAPSED in html and 'id="coupon-link-kept"' not in html
    fields, button = _form(html, "/pay")
    assert (fields["shown_wallet"], fields["shown_online"]) == ("10000", "42950")
    paid = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    assert paid.status_code == 303 and "/sandbox/checkout/" in paid.location
    assert _payments(app, visit_id) == [
        ("LINK", 47_655, "EXPIRED"),
        ("WALLET", 10_000, "PENDING"),
        ("ORDER", 42_950, "PENDING"),
    ]


def test_the_open_link_notice_is_said_in_hindi(app, client, login, world, gateway):
    visit_id, _ = hold(app, world)
    _linked(app, world, visit_id)
    login(world.patient)
    client.post("/language", data={"language": "hi", "next": "/me/"})
    html = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
    notice = re.search(r'id="coupon-link-kept">(.*?)</p>', html, re.S)
    assert notice and "कूपन SAVE10 अब मान्य नहीं है" in notice[1] and "₹476.55" in notice[1]
    assert "no longer" not in notice[1]
    assert notice[1].strip().endswith("यह कूपन अब सक्रिय नहीं है।"), notice[1]


def _desk_form(html):
    form = re.search(r'<form method="post" action="[^"]*/desk-payment".*?</form>', html, re.S)
    assert form, "no desk payment form"
    amount = re.search(r'<input type="hidden" name="amount" value="([^"]*)"', form[0])[1]
    button = re.search(r'<button type="submit"[^>]*>([^<]*)<', form[0])[1]
    return amount, " ".join(button.split())


def _lapsed_audit(app, visit_id):
    with app.app_context():
        return db.session.scalars(
            sa.select(AuditEntry).where(
                AuditEntry.action == "visit.coupon_lapsed", AuditEntry.object_id == str(visit_id)
            )
        ).all()


def test_the_desk_payment_of_a_visit_whose_coupon_lapsed_takes_the_whole_total(
    app, client, login, world
):
    """Before: the admin's button said "Record desk payment of ₹476.55" (SAVE10 off) and
    the click was refused "This coupon is no longer active". Now, as on the patient's
    page, the desk states ₹529.50 and says why; recording it detaches the coupon
    (audited) and records ₹529.50, the coupon's use count untouched."""
    visit_id, _ = hold(app, world)
    coupon_id = _applied(app, world, visit_id)
    with app.app_context():
        booking_coupons.update_coupon(_user(world.admin), coupon_id, active=False)
    login(world.admin)
    html = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    amount, button = _desk_form(html)
    assert (amount, button) == ("52950", "Record desk payment of ₹529.50")
    notice = re.search(r'id="desk-coupon-lapsed">(.*?)</p>', html, re.S)
    assert notice, "the page does not say why the desk takes the whole total"
    assert "Coupon SAVE10 is no longer valid" in notice[1]
    assert "This coupon is no longer active" in notice[1]
    assert _visit(app, visit_id) == ("DRAFT", coupon_id, 5_295)  # the GET wrote nothing

    paid = client.post(
        f"/admin/visits/{visit_id}/desk-payment", data={"receipt_no": "R-9", "amount": amount}
    )
    assert paid.status_code in (302, 303), paid.get_data(as_text=True)[:600]
    assert _visit(app, visit_id) == ("CONFIRMED", None, 0)
    assert _payments(app, visit_id) == [("DESK", 52_950, "SUCCESSFUL")]
    assert _coupon_uses(app, coupon_id) == (0, 0)
    audit = _lapsed_audit(app, visit_id)
    assert len(audit) == 1 and audit[0].before == {"coupon": "SAVE10", "discount": 5_295}
    assert audit[0].actor_id == world.admin.id


def test_the_desk_payment_beside_an_open_link_takes_the_links_price(
    app, client, login, world, gateway
):
    """Decision (docs/booking.md): the open link's offer is the visit's price until it
    ends, at the desk too. The desk states ₹476.55 as the link and the patient's page do,
    records it, and ends the link; the coupon use the link held is kept and confirmed."""
    visit_id, _ = hold(app, world)
    coupon_id, _ = _linked(app, world, visit_id)
    login(world.admin)
    html = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    amount, button = _desk_form(html)
    assert (amount, button) == ("47655", "Record desk payment of ₹476.55")
    kept = re.search(r'id="coupon-link-kept">(.*?)</p>', html, re.S)
    assert kept and "a desk payment first needs the coupon removed" not in kept[1]
    assert "desk payment takes the same" in kept[1]

    paid = client.post(
        f"/admin/visits/{visit_id}/desk-payment", data={"receipt_no": "R-10", "amount": amount}
    )
    assert paid.status_code in (302, 303), paid.get_data(as_text=True)[:600]
    assert _visit(app, visit_id) == ("CONFIRMED", coupon_id, 5_295)
    assert _payments(app, visit_id) == [
        ("LINK", 47_655, "EXPIRED"),
        ("DESK", 47_655, "SUCCESSFUL"),
    ]
    assert _coupon_uses(app, coupon_id) == (1, 1)
    with app.app_context():
        assert db.session.scalar(sa.select(CouponRedemption.confirmed)) is True
    assert _lapsed_audit(app, visit_id) == []
