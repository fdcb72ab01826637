"""Razorpay's hosted checkout sends the browser back with a cross-site form POST, which
carries no session cookie (SameSite=Lax). That answer must not set a session cookie: one
holding only a flash would replace the patient's and sign them out. The POST verifies and
writes; the signed-in GET it redirects to tells the outcome, the hold's end included."""

import re
from urllib.parse import parse_qsl, urlsplit

from portal.booking.errors import MSG_BAD_SIGNATURE, MSG_CONFIRMING, MSG_NOT_PAID, PaymentError
from portal.booking.models import MasterBooking
from portal.extensions import db
from portal.web.filters import clinic_time_short
from portal.web.patient import gateway_returns
from tests.cross_site import post_cross_site
from tests.web.booking.helpers import held_until, hold, returned_from_sandbox

FLASH = re.compile(r'<p class="flash flash-error" role="status">([^<]*)</p>')


def _returned_fields(client, visit_id, outcome):
    """Pay, then succeed or fail on the sandbox's page: the fields the gateway returns."""
    return dict(parse_qsl(returned_from_sandbox(client, visit_id, outcome).query))


def test_a_failed_post_return_keeps_the_patient_signed_in_and_says_until_when(
    app, client, login, world, gateway
):
    visit_id, _ = hold(app, world)
    login(world.patient)
    fields = _returned_fields(client, visit_id, "failure")
    assert any(name.startswith("error[") for name in fields)
    answer = post_cross_site(app, f"/me/visits/{visit_id}/paid", fields)
    # Followed with the patient's own cookie (a top-level GET carries a Lax cookie).
    told = client.get(answer.location)
    assert told.status_code == 303 and told.location.endswith(f"/me/visits/{visit_id}")
    page = client.get(told.location)
    assert page.status_code == 200
    until = clinic_time_short(held_until(app, visit_id))
    assert FLASH.findall(page.get_data(as_text=True)) == [
        f"Payment not completed: {MSG_NOT_PAID}. Your times are held until {until}; "
        "press Pay to try again."
    ]


def test_a_forged_post_return_keeps_the_patient_signed_in(app, client, login, world, gateway):
    visit_id, _ = hold(app, world)
    login(world.patient)
    fields = _returned_fields(client, visit_id, "success")
    fields["razorpay_signature"] = "0" * 64
    answer = post_cross_site(app, f"/me/visits/{visit_id}/paid", fields)
    page = client.get(client.get(answer.location).location).get_data(as_text=True)
    said = FLASH.findall(page)
    assert len(said) == 1 and said[0].startswith(f"Payment not completed: {MSG_BAD_SIGNATURE}.")
    with app.app_context():
        assert db.session.get(MasterBooking, visit_id).status == "PENDING_PAYMENT"
        db.session.remove()


def test_a_paid_post_return_keeps_the_patient_signed_in(app, client, login, world, gateway):
    visit_id, _ = hold(app, world)
    login(world.patient)
    fields = _returned_fields(client, visit_id, "success")
    answer = post_cross_site(app, f"/me/visits/{visit_id}/paid", fields)
    assert urlsplit(answer.location).path == f"/me/visits/{visit_id}/confirmation"
    page = client.get(answer.location)
    assert page.status_code == 200 and "<h1>Payment received</h1>" in page.get_data(as_text=True)


def test_a_post_return_whose_money_went_to_the_wallet_says_so(app, client, login, world, gateway):
    """The order paid while the desk's link replaced it: its money went to the wallet.
    The POST return hands the outcome on as a code (``wallet``) and the signed-in GET
    says where the money went, not the confirmation page's "waiting" (review r4)."""
    from portal.accounts.models import User
    from portal.booking import links
    from portal.booking.paid import MESSAGES, Outcome

    visit_id, _ = hold(app, world)
    login(world.patient)
    fields = _returned_fields(client, visit_id, "success")
    with app.app_context():
        links.create_payment_link(db.session.get(User, world.admin.id), visit_id)
        number = db.session.get(MasterBooking, visit_id).number
        db.session.remove()
    answer = post_cross_site(app, f"/me/visits/{visit_id}/paid", fields)
    assert answer.status_code == 303 and "outcome=wallet" in answer.location
    told = client.get(answer.location)
    assert told.status_code == 303 and told.location.endswith(f"/me/visits/{visit_id}")
    page = client.get(told.location).get_data(as_text=True)
    assert MESSAGES[Outcome.IN_WALLET] % {"number": number} in page
    assert not FLASH.findall(page)  # no "Payment not completed"


def test_the_outcome_address_tells_only_fixed_outcomes_and_only_to_the_owner(
    app, client, login, world, gateway
):
    visit_id, _ = hold(app, world)
    login(world.patient)
    told = client.get(f"/me/visits/{visit_id}/returned?outcome=Call+%2B91+90000+00000")
    assert told.status_code == 303
    page = client.get(told.location).get_data(as_text=True)
    assert "90000" not in page and not FLASH.findall(page)
    client.post("/auth/logout")
    login(world.other)
    assert client.get(f"/me/visits/{visit_id}/returned?outcome=unpaid").status_code == 404


def test_every_unpaid_outcome_stands_for_its_fixed_message():
    for message in (MSG_BAD_SIGNATURE, MSG_NOT_PAID, MSG_CONFIRMING):
        code = gateway_returns.outcome_of(PaymentError(message))
        assert gateway_returns.unpaid_error(code).message == message
    assert gateway_returns.unpaid_error("Card declined") is None
    assert gateway_returns.unpaid_error(gateway_returns.PAID) is None
    # A capture that did not pay the visit is a code of its own, never an unpaid one.
    for code in ("wallet", "refunded"):
        assert gateway_returns.paid_elsewhere(code) is not None
        assert gateway_returns.unpaid_error(code) is None
    assert gateway_returns.paid_elsewhere("confirmed") is None
    assert gateway_returns.paid_elsewhere("Call us") is None
