"""A payment link's return: Razorpay sends the browser back to the portal after the
patient paid a link (``callback_url``, GET, signed over link|reference|status|payment).
Before, links were made without a callback_url, so the patient stayed on Razorpay's page
and the visit waited for the webhook. Public (a phone not signed in): acted on only when
signed, and handled as the webhook would handle the capture, once."""

import re
from html import unescape
from urllib.parse import parse_qsl, urlsplit

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.booking import links
from portal.booking.models import MasterBooking
from portal.booking.paid import MESSAGES, Outcome
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerTransaction
from portal.ledger.service import balance
from portal.payments.models import Payment, PaymentAttempt
from tests.booking.factories import quoted_checkout
from tests.pages import a_second_later, without_csrf
from tests.refunds.helpers import quoted_admin_cancel
from tests.web.booking.helpers import hold

RETURN = "/me/links/paid"


@pytest.fixture(autouse=True)
def _ledger_sound(ledger_stays_sound):
    """Every test here ends with a balanced, sound ledger."""


def _linked(app, world):
    """A visit held for the patient, an admin's link sent for it; returns (visit id,
    the link's id, its short URL)."""
    visit_id, _ = hold(app, world)
    with app.app_context():
        link = links.create_payment_link(db.session.get(User, world.admin.id), visit_id)
        return visit_id, link.razorpay_link_id, link.link_url


def _pay(client, link_url):
    """What the patient does on the link's page (the sandbox at /sandbox); returns the
    address the gateway sends the browser to."""
    path = urlsplit(link_url).path
    assert client.get(path).status_code == 200
    answer = client.post(path, data={"method": "upi", "outcome": "success"})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:500]
    return answer.location


def _state(app, visit_id):
    """What a return could write: the visit's status, its payments, their attempts and
    the ledger's entries."""
    with app.app_context():
        status = db.session.get(MasterBooking, visit_id).status
        payments = db.session.execute(
            sa.select(Payment.kind, Payment.amount, Payment.status)
            .where(Payment.master_id == visit_id)
            .order_by(Payment.id)
        ).all()
        attempts = db.session.scalar(sa.select(sa.func.count()).select_from(PaymentAttempt))
        entries = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerTransaction))
        return status, payments, attempts, entries


def test_the_link_returns_to_the_portal_and_its_signed_return_confirms_once(
    app, client, world, gateway
):
    visit_id, link_id, link_url = _linked(app, world)
    assert gateway.store.links[link_id]["callback_url"] == f"{app.config['PUBLIC_URL']}{RETURN}"
    assert gateway.store.links[link_id]["callback_method"] == "get"
    back = urlsplit(_pay(client, link_url))
    assert back.path == RETURN
    params = dict(parse_qsl(back.query))
    assert params["razorpay_payment_link_id"] == link_id
    assert params["razorpay_payment_link_status"] == "paid"
    before = _state(app, visit_id)
    assert before[0] == "PENDING_PAYMENT"  # no webhook delivered yet

    page = client.get(RETURN, query_string=params)  # a phone, not signed in
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html[:500]
    with app.app_context():
        number = db.session.get(MasterBooking, visit_id).number
    assert f"Payment received, your visit {number} is confirmed." in html
    assert world.patient.name not in html and world.patient.email not in html
    confirmed = _state(app, visit_id)
    assert confirmed[0] == "CONFIRMED"
    assert confirmed[1] == [("LINK", before[1][0][1], "SUCCESSFUL")]
    with app.app_context():
        assert balance(chart.GATEWAY_CLEARING) == before[1][0][1]

    with a_second_later():
        again = client.get(RETURN, query_string=params)  # reloaded, or opened twice
    # The same page, but for the CSRF token signed with the second (docs/security.md).
    assert again.status_code == 200
    assert without_csrf(again.get_data(as_text=True)) == without_csrf(html)
    assert _state(app, visit_id) == confirmed
    gateway.deliver_pending(force=True)  # then the webhook: nothing twice
    assert _state(app, visit_id)[:2] == confirmed[:2]
    with app.app_context():
        assert balance(chart.GATEWAY_CLEARING) == before[1][0][1]


def _tampered(params, **changes):
    return {**params, **changes}


def _signed(gateway, params, **changes):
    """``params`` changed and signed again with the key secret, as the gateway signs."""
    from portal.gateway.sandbox.common import sign

    changed = {**params, **changes}
    payload = "|".join(
        changed[f"razorpay_{k}"]
        for k in (
            "payment_link_id",
            "payment_link_reference_id",
            "payment_link_status",
            "payment_id",
        )
    )
    return {**changed, "razorpay_signature": sign(payload, gateway.store.key_secret)}


def test_a_return_not_signed_by_the_gateway_is_refused_and_writes_nothing(
    app, client, world, gateway
):
    visit_id, _, link_url = _linked(app, world)
    params = dict(parse_qsl(urlsplit(_pay(client, link_url)).query))
    sig = params["razorpay_signature"]
    before = _state(app, visit_id)
    for forged in (
        _tampered(params, razorpay_signature=("0" if sig[0] != "0" else "1") + sig[1:]),
        _tampered(params, razorpay_payment_link_reference_id="V-1-L9"),
        _tampered(params, razorpay_payment_id="pay_forged000000"),
        _tampered(params, razorpay_payment_link_id="plink_unknown0000"),
        _tampered(params, razorpay_payment_link_status="created"),
        {k: v for k, v in params.items() if k != "razorpay_signature"},
        {},
        # Signed with the key, but not a paid link's return (Razorpay redirects only after
        # a payment): refused by its status, not its signature.
        _signed(gateway, params, razorpay_payment_link_status="created"),
    ):
        page = client.get(RETURN, query_string=forged)
        html = page.get_data(as_text=True)
        assert page.status_code == 400, (forged, html[:300])
        assert "We could not verify this payment" in html and "confirmed." not in html
        assert _state(app, visit_id) == before
    assert client.get(RETURN, query_string=params).status_code == 200  # the genuine one


def test_the_visits_patient_signed_in_goes_to_the_visit_page(app, client, login, world, gateway):
    visit_id, _, link_url = _linked(app, world)
    params = dict(parse_qsl(urlsplit(_pay(client, link_url)).query))
    login(world.other)  # another patient: the plain page, never the visit
    page = client.get(RETURN, query_string=params)
    assert page.status_code == 200 and f"/me/visits/{visit_id}" not in page.get_data(as_text=True)
    client.post("/auth/logout")
    login(world.patient)
    page = client.get(RETURN, query_string=params)
    assert page.status_code == 303 and page.location.endswith(f"/me/visits/{visit_id}")
    html = client.get(page.location).get_data(as_text=True)
    with app.app_context():
        number = db.session.get(MasterBooking, visit_id).number
    assert MESSAGES[Outcome.CONFIRMED] % {"number": number} in html


def test_the_page_is_said_in_hindi(app, client, world, gateway):
    _, _, link_url = _linked(app, world)
    params = dict(parse_qsl(urlsplit(_pay(client, link_url)).query))
    client.post("/language", data={"language": "hi", "next": "/"})
    html = client.get(RETURN, query_string=params).get_data(as_text=True)
    assert re.search(r"भुगतान मिल गया, आपकी विज़िट \S+ पक्की हो गई है।", html), html[-1500:]
    bad = client.get(RETURN, query_string={**params, "razorpay_signature": "x"})
    assert bad.status_code == 400 and "हम इस भुगतान का सत्यापन नहीं कर सके" in bad.get_data(
        as_text=True
    )


def test_a_payment_not_captured_yet_is_being_confirmed_and_its_webhook_confirms(
    app, client, world, gateway
):
    """Signed, but the gateway has only authorized the payment: the page says it is being
    confirmed (200), nothing is written; the capture's webhook confirms the visit."""
    visit_id, _, link_url = _linked(app, world)
    params = dict(parse_qsl(urlsplit(_pay(client, link_url)).query))
    before = _state(app, visit_id)
    gateway.set_faults(alter={params["razorpay_payment_id"]: {"status": "authorized"}})
    page = client.get(RETURN, query_string=params)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "We are confirming your payment for visit" in html and "is confirmed." not in html
    assert _state(app, visit_id) == before
    gateway.reset_faults()
    gateway.deliver_pending(force=True)
    assert _state(app, visit_id)[0] == "CONFIRMED"
    assert "is confirmed." in client.get(RETURN, query_string=params).get_data(as_text=True)


def _said(html):
    """The page's one sentence about the payment (unescaped)."""
    return unescape(re.search(r'<p id="link-paid"[^>]*>([^<]*)</p>', html).group(1))


def _rows(app, visit_id):
    with app.app_context():
        return [
            tuple(r)
            for r in db.session.execute(
                sa.select(Payment.kind, Payment.status, Payment.unapplied)
                .where(Payment.master_id == visit_id)
                .order_by(Payment.id)
            )
        ]


def test_a_link_paid_after_an_order_replaced_it_says_the_money_is_in_the_wallet(
    app, client, login, world, gateway
):
    """The patient pays the SMS link; before its return (or webhook) arrives, the visit's
    Pay (a second tab, the back button) replaced the link with an order. The link's money
    is captured as unapplied, into the wallet, and the visit still waits for the order.
    Before, the return page said "confirming ... no need to pay again" (review r4): it says
    where the money went now, and so does the signed-in patient's visit page."""
    visit_id, _, link_url = _linked(app, world)
    params = dict(parse_qsl(urlsplit(_pay(client, link_url)).query))
    with app.app_context():
        quoted_checkout(db.session.get(User, world.patient.id), visit_id, 0, "http://x/cb")
        number = db.session.get(MasterBooking, visit_id).number
    page = client.get(RETURN, query_string=params)  # a phone, not signed in
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert ("LINK", "SUCCESSFUL", True) in _rows(app, visit_id)  # to the wallet
    with app.app_context():
        assert db.session.get(MasterBooking, visit_id).status == "PENDING_PAYMENT"
    assert "no need to pay again" not in html
    assert _said(html) == MESSAGES[Outcome.IN_WALLET] % {"number": number}
    assert "<h1>Payment added to your wallet</h1>" in html
    login(world.patient)
    told = client.get(RETURN, query_string=params)  # reloaded, signed in: the same words
    assert told.status_code == 303 and told.location.endswith(f"/me/visits/{visit_id}")
    visit_page = client.get(told.location).get_data(as_text=True)
    assert MESSAGES[Outcome.IN_WALLET] % {"number": number} in visit_page
    assert _rows(app, visit_id).count(("LINK", "SUCCESSFUL", True)) == 1  # captured once


def test_the_wallet_outcome_is_said_in_hindi(app, client, world, gateway):
    visit_id, _, link_url = _linked(app, world)
    params = dict(parse_qsl(urlsplit(_pay(client, link_url)).query))
    with app.app_context():
        quoted_checkout(db.session.get(User, world.patient.id), visit_id, 0, "http://x/cb")
    client.post("/language", data={"language": "hi", "next": "/"})
    html = client.get(RETURN, query_string=params).get_data(as_text=True)
    assert "वॉलेट" in _said(html) and "did not pay" not in html, _said(html)


def test_a_reload_after_the_visit_was_cancelled_says_it_was_paid_then_cancelled(
    app, client, world, gateway
):
    """The link paid and confirmed the visit; the visit is cancelled later; the return
    page opened again (the phone's history) says so, not "we are confirming" (review r4)."""
    visit_id, _, link_url = _linked(app, world)
    params = dict(parse_qsl(urlsplit(_pay(client, link_url)).query))
    assert client.get(RETURN, query_string=params).status_code == 200  # confirmed
    with app.app_context():
        visit = db.session.get(MasterBooking, visit_id)
        number, item_id = visit.number, visit.items[0].id
        admin = db.session.get(User, world.admin.id)
        quoted_admin_cancel(admin, item_id, "Clinic closed that day", mode="clinic")
        assert db.session.get(MasterBooking, visit_id).status == "CANCELLED"
    html = client.get(RETURN, query_string=params).get_data(as_text=True)
    assert _said(html) == MESSAGES[Outcome.CANCELLED] % {"number": number}
    assert "confirming" not in html.lower()
