"""The pages: patient cancel (htmx preview, 422 beside the field, 303, strangers 404),
reschedule, wallet; provider cancel; admin cancel, approvals, refunds list."""

import re
from datetime import date

import pytest
import sqlalchemy as sa
from flask_babel import refresh

from portal.accounts.models import User
from portal.booking.models import IndividualBooking, MasterBooking, Reschedule
from portal.catalog.models import Provider
from portal.domain.rates import format_inr
from portal.extensions import db
from portal.refunds.models import Cancellation, Refund, RefundApproval
from tests.booking.factories import at, credit_wallet
from tests.refunds.helpers import (
    book_and_pay,
    cancel_as_patient,
    hours,
    login,
    move_fields,
    post_move,
    quoted_move,
    with_known_passwords,
)

HX = {"HX-Request": "true", "HX-Target": "cancel-preview"}


def _move(client, item_id, data):
    return post_move(client, f"/me/bookings/{item_id}/reschedule", data)


@pytest.fixture
def setup(app, world, users, gateway):
    with_known_passwords()
    patient = users(world.patients[0])
    visit = book_and_pay(
        world,
        patient,
        gateway,
        [
            (world.consult, [world.doctors[0]], at(4, 10)),
            (world.lab, [world.lab_provider], at(4, 11)),
            (world.follow, [world.doctors[0]], at(4, 12)),
        ],
    )
    ids = [i.id for i in visit.items]
    emails = {
        "patient": patient.email,
        "other": users(world.patients[1]).email,
        "admin": users(world.admin).email,
        "doctor": db.session.get(User, db.session.get(Provider, world.doctors[0]).user_id).email,
        "lab": db.session.get(User, db.session.get(Provider, world.lab_provider).user_id).email,
    }
    db.session.remove()
    return visit.id, ids, emails


def test_patient_cancel_page_preview_and_submit(app, client, setup, clock):
    visit_id, ids, emails = setup
    login(client, emails["patient"])
    page = client.get(f"/me/visits/{visit_id}/cancel?item={ids[0]}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "₹529.50" in html and "hours or more before the start" in html
    assert "<script>" not in html and 'style="' not in html
    # htmx preview of the chosen items and destination: only the block.
    part = client.get(
        f"/me/visits/{visit_id}/cancel?items={ids[0]}&items={ids[1]}&destination=wallet", headers=HX
    )
    text = part.get_data(as_text=True)
    assert part.status_code == 200 and "<html" not in text
    assert 'id="refund-total">₹882.50' in text and 'id="refund-gateway">₹0<' in text
    # Nothing chosen: 422 with the message beside the field.
    bad = client.post(f"/me/visits/{visit_id}/cancel", data={"destination": "original"})
    assert bad.status_code == 422 and "Choose at least one appointment" in bad.get_data(True)
    done = cancel_as_patient(client, visit_id, [ids[0]], reason="Better")
    assert done.status_code == 303 and done.location.endswith(f"/me/visits/{visit_id}/refunds")
    with app.app_context():
        assert db.session.get(IndividualBooking, ids[0]).status == "CANCELLED"
        assert db.session.get(MasterBooking, visit_id).status == "PARTIALLY_CANCELLED"
    again = client.post(f"/me/visits/{visit_id}/cancel", data={"items": [ids[0]]})
    assert again.status_code == 422 and "already cancelled" in again.get_data(True)


def test_patient_within_24_hours_sees_the_policy_message(app, client, setup, clock):
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(20))
    login(client, emails["patient"])
    html = client.get(f"/me/visits/{visit_id}/cancel").get_data(as_text=True)
    assert "Cancellation not allowed within 24 hours of appointment" in html
    r = client.post(f"/me/visits/{visit_id}/cancel", data={"items": [ids[0]]})
    assert r.status_code == 422
    assert "Cancellation not allowed within 24 hours of appointment" in r.get_data(True)


def test_strangers_get_404(app, client, setup, clock):
    visit_id, ids, emails = setup
    login(client, emails["other"])
    assert client.get(f"/me/visits/{visit_id}/cancel").status_code == 404
    assert client.post(f"/me/visits/{visit_id}/cancel", data={"items": [ids[0]]}).status_code == 404
    assert client.get(f"/me/bookings/{ids[0]}/reschedule").status_code == 404
    assert client.post(f"/me/bookings/{ids[0]}/reschedule", data={}).status_code == 404
    client.post("/auth/logout")
    login(client, emails["lab"])
    assert client.get(f"/provider/bookings/{ids[0]}/cancel").status_code == 404
    assert (
        client.post(f"/provider/bookings/{ids[0]}/cancel", data={"reason": "x"}).status_code == 404
    )


def test_reschedule_page_moves_the_booking(app, client, setup, clock):
    visit_id, ids, emails = setup
    login(client, emails["patient"])
    page = client.get(f"/me/bookings/{ids[0]}/reschedule?day=2026-06-08")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "No fee" in html
    slots = (
        re.findall(r'name="slot" type="radio" value="([^"]+)"', html)
        or re.findall(r'type="radio" name="slot" value="([^"]+)"', html)
        or re.findall(r'value="([^"]+)"[^>]*name="slot"', html)
    )
    assert slots, html[:2000]
    bad = client.post(f"/me/bookings/{ids[0]}/reschedule", data={})
    assert bad.status_code == 422 and "Choose a new time" in bad.get_data(True)
    weekend = at(5, 10).isoformat()
    r = _move(client, ids[0], {"slot": weekend})
    assert r.status_code == 422 and "Appointments not available on weekends" in r.get_data(True)
    r = _move(client, ids[0], {"slot": slots[0]})
    assert r.status_code == 303, r.get_data(True)[:500]
    with app.app_context():
        assert db.session.get(IndividualBooking, ids[0]).start_at.isoformat() == slots[0]


@pytest.mark.parametrize("page", ["reschedule", "rebook"])
def test_a_day_beyond_the_listed_days_lists_the_last_one(app, client, setup, clock, page):
    """9999-12-31 overflowed the free-times search (a 500, review rev2): a day beyond
    ``LIST_DAYS_AHEAD`` (90) lists the last day with a message beside the day, in Hindi
    too; posted with no time, the span's message (422) and nothing is moved or booked."""
    visit_id, ids, emails = setup
    login(client, emails["patient"])
    url = f"/me/bookings/{ids[0]}/{page}"
    shown = client.get(f"{url}?day=9999-12-31")
    html = shown.get_data(as_text=True)
    assert shown.status_code == 200
    assert "Free times from Sun 30 Aug 2026" in html  # Mon 1 June + 90 days
    assert "Free times are shown at most 90 days ahead." in html
    assert re.search(r'<input[^>]*name="day"[^>]*value="2026-08-30"', html)
    with app.app_context():
        items = db.session.scalar(sa.select(sa.func.count()).select_from(IndividualBooking))
    posted = client.post(url, data={"day": "9999-12-31"})
    assert posted.status_code == 422
    assert "Enter a date between 1900 and 2099." in posted.get_data(as_text=True)
    assert "Choose a new time" in posted.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(IndividualBooking, ids[0]).start_at == at(4, 10)
        # Neither a move (reschedule) nor a new booking (rebook) was written.
        assert not db.session.scalars(sa.select(Reschedule)).all()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IndividualBooking)) == items
    client.post("/language", data={"language": "hi", "next": "/"})
    refresh()  # the test's app context outlives the requests, and Babel's locale with it
    hindi = client.get(f"{url}?day=9999-12-31").get_data(as_text=True)
    assert "खाली समय अधिकतम 90 दिन आगे तक दिखाए जाते हैं।" in hindi


@pytest.mark.parametrize("who", ["patient", "admin"])
def test_a_crafted_move_beyond_the_booking_horizon_is_the_message(app, client, setup, clock, who):
    """A move posted with a start past the last bookable day (``BOOK_DAYS_AHEAD``, the
    clinic's today) is the horizon's message (422), not a move (it moved a booking to
    2099); the last bookable day moves it."""
    from datetime import datetime, time, timedelta

    from portal.db import clinic_today
    from portal.domain.slots import BOOK_DAYS_AHEAD, last_bookable_day
    from tests.booking.factories import IST

    visit_id, ids, emails = setup
    login(client, emails[who])
    url = f"/me/bookings/{ids[0]}/reschedule"
    if who == "admin":
        url = f"/admin/bookings/{ids[0]}/reschedule"
    last = last_bookable_day(clinic_today())
    for far in (last + timedelta(days=1), date(2099, 6, 1)):
        start = datetime.combine(far, time(10), tzinfo=IST).isoformat()
        r = post_move(client, url, {"slot": start, "pay_with": "wallet"})
        assert r.status_code == 422
        assert f"Appointments can be booked at most {BOOK_DAYS_AHEAD} days ahead" in r.text
    with app.app_context():
        assert db.session.get(IndividualBooking, ids[0]).start_at == at(4, 10)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Reschedule)) == 0
    while last.weekday() >= 5:
        last -= timedelta(days=1)
    start = datetime.combine(last, time(10), tzinfo=IST)
    assert (
        post_move(client, url, {"slot": start.isoformat(), "pay_with": "wallet"}).status_code == 303
    )
    with app.app_context():
        assert db.session.get(IndividualBooking, ids[0]).start_at == start


def test_reschedule_fee_paid_from_the_wallet(app, client, setup, clock, world):
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(50))
    credit_wallet(world.patients[0], 10_000)
    login(client, emails["patient"])
    html = client.get(f"/me/bookings/{ids[0]}/reschedule").get_data(as_text=True)
    assert "Total to pay before the move" in html and "₹61.95" in html
    r = _move(client, ids[0], {"slot": at(7, 11).isoformat()})
    assert r.status_code == 422 and "Choose how to pay the reschedule fee" in r.get_data(True)
    r = _move(client, ids[0], {"slot": at(7, 11).isoformat(), "pay_with": "wallet"})
    assert r.status_code == 303
    wallet = client.get("/me/wallet").get_data(as_text=True)
    assert 'id="wallet-balance">₹38.05' in wallet and "Reschedule fee" in wallet


def test_a_boosted_move_with_the_fee_online_goes_to_the_gateway_by_hx_redirect(
    app, client, setup, clock
):
    """The move form is boosted (a refused post leaves no POST in the browser's history):
    the gateway's page is loaded as a page (HX-Redirect), not followed by htmx's XHR and
    swapped into the portal's body; a refusal keeps the form's address."""
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(50))
    login(client, emails["patient"])
    url = f"/me/bookings/{ids[0]}/reschedule"
    boosted = {"HX-Request": "true", "HX-Boosted": "true"}
    page = client.get(url).text
    assert 'hx-boost="false"' not in page.split('id="slots"')[0].rsplit("<form", 1)[1]
    shown = move_fields(page)
    refused = client.post(url, data={**shown, "pay_with": "gateway"}, headers=boosted)
    assert refused.status_code == 422 and refused.headers["HX-Push-Url"] == "false"
    r = client.post(
        url,
        data={**shown, "slot": at(7, 11).isoformat(), "pay_with": "gateway"},
        headers=boosted,
    )
    assert r.status_code == 200 and "Location" not in r.headers
    assert "/sandbox/" in r.headers["HX-Redirect"] or "checkout" in r.headers["HX-Redirect"]


def test_money_form_pages_keep_no_snapshot_and_no_cache(app, client, setup, clock):
    """Back never shows a money form as it was before the click: the pages with one carry
    hx-history="false" (htmx keeps no snapshot; Back loads them again) and no-store."""
    visit_id, ids, emails = setup
    marker = '<div hx-history="false" hidden></div>'
    login(client, emails["patient"])
    for url in (
        f"/me/visits/{visit_id}",
        f"/me/visits/{visit_id}/cancel",
        f"/me/bookings/{ids[0]}/reschedule",
    ):
        r = client.get(url)
        assert r.status_code == 200 and marker in r.text, url
        assert r.headers["Cache-Control"] == "no-store", url
    assert marker not in client.get("/me/wallet").text  # a page without one is kept
    client.post("/auth/logout")
    login(client, emails["doctor"])
    r = client.get(f"/provider/bookings/{ids[0]}/cancel")
    assert marker in r.text and r.headers["Cache-Control"] == "no-store"


def test_wallet_page_shows_refunds(app, client, setup, clock):
    visit_id, ids, emails = setup
    login(client, emails["patient"])
    cancel_as_patient(client, visit_id, [ids[1]], "wallet")
    html = client.get("/me/wallet").get_data(as_text=True)
    assert 'id="wallet-balance">₹353<' in html
    assert "Refund for a cancelled appointment" in html and "+₹353<" in html


def test_provider_cancels_with_reason(app, client, setup, clock):
    visit_id, ids, emails = setup
    login(client, emails["doctor"])
    page = client.get(f"/provider/bookings/{ids[0]}/cancel")
    assert page.status_code == 200 and "₹250" in page.get_data(True)
    shown = _shown(page.get_data(True))
    r = client.post(f"/provider/bookings/{ids[0]}/cancel", data={"reason": "  ", **shown})
    assert r.status_code == 422 and "Give a reason" in r.get_data(True)
    r = client.post(
        f"/provider/bookings/{ids[0]}/cancel", data={"reason": "Called to surgery", **shown}
    )
    assert r.status_code == 303
    with app.app_context():
        assert db.session.get(IndividualBooking, ids[0]).status == "CANCELLED"


def test_provider_cancel_page_states_the_policys_refund(app, client, setup, clock):
    """The page and its flash said "a full refund" whatever the policy's provider
    cancellation refund (here 50 %) while the cancellation refunded what the policy said
    (review finding): the page states the amount and why, from the preview."""
    from portal.domain.policy import DEFAULT_POLICY
    from portal.refunds.models import Cancellation

    visit_id, ids, emails = setup
    saved = app.config.get("POLICY")
    app.config["POLICY"] = DEFAULT_POLICY.with_changes(provider_cancellation_refund_bps=5_000)
    try:
        login(client, emails["doctor"])
        page = client.get(f"/provider/bookings/{ids[0]}/cancel").get_data(as_text=True)
        done = client.post(
            f"/provider/bookings/{ids[0]}/cancel",
            data={"reason": "Called to surgery", **_shown(page)},
            follow_redirects=True,
        ).get_data(as_text=True)
        with app.app_context():
            cancellation = db.session.scalars(sa.select(Cancellation)).one()
            paid = db.session.get(IndividualBooking, ids[0]).paid_amount
        assert cancellation.refund == paid // 2
        assert f"The patient gets a refund of {format_inr(paid // 2)}" in page
        assert "50% refund" in page and "full refund" not in page + done
    finally:
        app.config["POLICY"] = saved


def test_admin_cancel_modes_state_the_policy_in_force(app, client, setup):
    """The admin's cancel page offered its modes with labels typed into the form: "50% −
    ₹250 within 24 h", "full refund", "₹250 penalty on the provider", whatever the policy
    said (review finding; POLICY.md: every figure is data). The labels are made from the
    policy the booking is cancelled under, as the provider's page states its refund."""
    from datetime import timedelta

    from portal.domain.policy import DEFAULT_POLICY, RefundTier
    from portal.domain.rates import rupees

    visit_id, ids, emails = setup
    first, _second = DEFAULT_POLICY.patient_cancellation_tiers
    saved = app.config.get("POLICY")
    app.config["POLICY"] = DEFAULT_POLICY.with_changes(
        patient_cancellation_tiers=(first, RefundTier(timedelta(hours=12), False, 7_500)),
        admin_late_cancellation=RefundTier(timedelta(0), True, 4_000, rupees(300)),
        provider_cancellation_refund_bps=9_000,
        provider_cancellation_penalty=rupees(300),
        clinic_cancellation_refund_bps=9_500,
    )
    try:
        login(client, emails["admin"])
        page = client.get(f"/admin/bookings/{ids[0]}/cancel").get_data(as_text=True)
    finally:
        app.config["POLICY"] = saved
    labels = re.findall(r'<label><input[^>]*name="mode"[^>]*> ([^<]*)</label>', page)
    assert labels == [
        "For the patient (100%: more than 48 h before the start)",
        "For the clinic (95% refund, no penalty)",
        "For the provider (90% refund, ₹300 penalty on the provider)",
    ]
    assert "₹250" not in page and "full refund" not in page


@pytest.mark.parametrize(
    ("left", "tier"),
    [
        (30, "75% − ₹100: more than 24 h before the start"),
        (5, "50% − ₹250: within 24 h of the start"),
    ],
)
def test_admin_cancel_patient_mode_names_the_tier_the_preview_gives(
    app, client, setup, clock, left, tier
):
    """Review finding: the patient option named the 50% − ₹250 tier while the preview line
    below it gave 75% − ₹100 (30 hours ahead): the label names the tier that applies."""
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(left))
    login(client, emails["admin"])
    page = client.get(f"/admin/bookings/{ids[0]}/cancel?mode=patient").get_data(as_text=True)
    labels = re.findall(r'<label><input[^>]*name="mode"[^>]*> ([^<]*)</label>', page)
    assert labels[0] == f"For the patient ({tier})"


def test_admin_cancel_clicked_twice_lands_both_on_the_visit(app, client, setup, clock):
    """Review finding: a double click on "Cancel this booking" (a boosted post) answered
    the second post with the cancel page and HX-Push-Url: false, so the address stayed on
    /admin/bookings/<id>/cancel: the second post, finding it cancelled, goes where the
    first did (303 to the visit), saying so."""
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(30))
    login(client, emails["admin"])
    form = {"mode": "patient", "override": "", "reason": "Patient phoned to cancel"}
    page = client.get(f"/admin/bookings/{ids[0]}/cancel", query_string=form).get_data(True)
    data = {**form, **_hidden(page)}
    boosted = {"HX-Request": "true", "HX-Boosted": "true"}
    first = client.post(f"/admin/bookings/{ids[0]}/cancel", data=data, headers=boosted)
    second = client.post(f"/admin/bookings/{ids[0]}/cancel", data=data, headers=boosted)
    assert first.status_code == 303 and second.status_code == 303
    assert second.headers["Location"] == first.headers["Location"] == f"/admin/visits/{visit_id}"
    shown = client.get(second.headers["Location"]).get_data(as_text=True)
    assert "This booking was already cancelled" in shown


def test_admin_cancel_override_and_second_admin_approval(app, client, setup, clock, make_user):
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(10))
    login(client, emails["admin"])
    page = client.get(f"/admin/bookings/{ids[0]}/cancel?mode=patient&override=&reason=")
    assert page.status_code == 200 and "₹14.75" in page.get_data(True)
    r = client.post(
        f"/admin/bookings/{ids[0]}/cancel",
        data={"mode": "patient", "override": "abc", "reason": "x"},
    )
    assert r.status_code == 422 and "Enter an amount in rupees" in r.get_data(True)
    r = client.post(
        f"/admin/bookings/{ids[0]}/cancel",
        data={"mode": "patient", "override": "529.50", "reason": "short"},
    )
    assert r.status_code == 422 and "Detailed note required for audit trail" in r.get_data(True)
    form = {
        "mode": "patient",
        "override": "529.50",
        "reason": "Doctor was two hours late last time",
    }
    page = client.get(f"/admin/bookings/{ids[0]}/cancel", query_string=form).get_data(True)
    r = client.post(f"/admin/bookings/{ids[0]}/cancel", data={**form, **_hidden(page)})
    assert r.status_code == 303
    page = client.get("/admin/approvals").get_data(as_text=True)
    assert "Another administrator must decide" in page
    with app.app_context():
        approval = db.session.scalars(sa.select(RefundApproval)).one()
    r = client.post(f"/admin/approvals/{approval.id}/approve", data={"note": "self"})
    assert r.status_code == 303
    client.post("/auth/logout")
    second = make_user("admin", email="second.admin@example.com")
    login(client, second.email)
    r = client.post(f"/admin/approvals/{approval.id}/approve", data={"note": "Agreed"})
    assert r.status_code == 303
    with app.app_context():
        assert db.session.get(RefundApproval, approval.id).status == "APPROVED"
        assert db.session.get(IndividualBooking, ids[0]).refunded_amount == 52_950
    html = client.get("/admin/refunds").get_data(as_text=True)
    assert html.count('id="refund-') >= 2


def test_admin_refunds_list_dates_each_refund(app, client, setup, clock):
    """Review finding: the refunds list had no date column: each row says when it was asked
    for and when it was processed (clinic time)."""
    visit_id, ids, emails = setup
    login(client, emails["patient"])
    cancel_as_patient(client, visit_id, [ids[0]])
    client.post("/auth/logout")
    login(client, emails["admin"])
    html = client.get("/admin/refunds").get_data(as_text=True)
    head = html.split('id="refunds"')[1].split("</thead>")[0]
    assert "<th>Requested</th>" in head and "<th>Processed</th>" in head
    with app.app_context():
        refund = db.session.scalars(sa.select(Refund)).first()
        shown = app.jinja_env.filters["clinic_time"](refund.created_at)
    row = html.split(f'id="refund-{refund.id}"')[1].split("</tr>")[0]
    assert f'<td class="nowrap">{shown}</td>' in row


def test_admin_refunds_list_retry_and_wallet(app, client, setup, clock, gateway):
    visit_id, ids, emails = setup
    gateway.sandbox.set_faults(fail_next=10, error_status=503, match="refund")
    app.config["REFUND_MAX_ATTEMPTS"] = 1
    try:
        login(client, emails["patient"])
        cancel_as_patient(client, visit_id, [ids[0]])
    finally:
        app.config.pop("REFUND_MAX_ATTEMPTS")
    client.post("/auth/logout")
    login(client, emails["admin"])
    html = client.get("/admin/refunds?status=FAILED").get_data(as_text=True)
    assert "Retry" in html and "Send to wallet" in html
    with app.app_context():
        refund = db.session.scalars(sa.select(Refund)).one()
    gateway.sandbox.reset_faults()
    # Issue #16: one click moved money. The list leads to a page stating the amount; a
    # POST without the confirmed amount is asked again and moves nothing.
    amount = app.jinja_env.filters["inr"](refund.amount)
    assert f'href="/admin/refunds/{refund.id}/retry"' in html
    ask = client.get(f"/admin/refunds/{refund.id}/retry").get_data(as_text=True)
    assert f"Yes, refund {amount} again" in ask and f'value="{refund.amount}"' in ask
    unconfirmed = client.post(f"/admin/refunds/{refund.id}/retry")
    assert unconfirmed.status_code == 422 and "Confirm the amount" in unconfirmed.get_data(True)
    with app.app_context():
        assert not db.session.get(Refund, refund.id).razorpay_refund_id
    yes = {"confirmed_amount": refund.amount}
    assert client.post(f"/admin/refunds/{refund.id}/retry", data=yes).status_code == 303
    with app.app_context():
        assert db.session.get(Refund, refund.id).razorpay_refund_id
    assert client.post(f"/admin/refunds/{refund.id}/to-wallet", data=yes).status_code == 303
    assert client.post("/admin/refunds/999999/retry").status_code == 404


def test_admin_asks_for_a_further_refund_on_a_cancelled_booking(
    app, client, setup, clock, make_user
):
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(30))
    login(client, emails["patient"])
    assert cancel_as_patient(client, visit_id, [ids[0]]).status_code == 303
    assert (
        client.post(f"/admin/bookings/{ids[0]}/further-refund", data={"amount": "10"}).status_code
        == 403
    )
    client.post("/auth/logout")
    login(client, emails["admin"])
    page = client.get(f"/admin/bookings/{ids[0]}/cancel").get_data(as_text=True)
    assert "Further refund" in page and "Up to ₹232.37 more can be refunded" in page
    r = client.post(
        f"/admin/bookings/{ids[0]}/further-refund",
        data={"amount": "300", "destination": "wallet", "reason": "Doctor ran an hour late"},
    )
    assert r.status_code == 422
    assert "Refund amount cannot exceed what is left to refund: ₹232.37" in r.get_data(True)
    r = client.post(
        f"/admin/bookings/{ids[0]}/further-refund",
        data={"amount": "100", "destination": "wallet", "reason": "late"},
    )
    assert r.status_code == 422 and "Detailed note required for audit trail" in r.get_data(True)
    # A destination that is none of the choices is said beside them, not a bare 422.
    r = client.post(
        f"/admin/bookings/{ids[0]}/further-refund",
        data={"amount": "100", "destination": "bank", "reason": "Doctor ran an hour late"},
    )
    refused = r.get_data(True).split("<legend>Refund to</legend>", 1)[1].split("</fieldset>")[0]
    assert r.status_code == 422 and "Not a valid choice" in refused, refused
    r = client.post(
        f"/admin/bookings/{ids[0]}/further-refund",
        data={"amount": "100", "destination": "wallet", "reason": "Doctor ran an hour late"},
    )
    assert r.status_code == 303
    page = client.get(f"/admin/bookings/{ids[0]}/cancel").get_data(as_text=True)
    assert "₹100 awaits a second administrator" in page
    assert (
        client.post("/admin/bookings/999999/further-refund", data={"amount": "1"}).status_code
        == 404
    )
    client.post("/auth/logout")
    second = make_user("admin", email="second.admin@example.com")
    login(client, second.email)
    with app.app_context():
        approval = db.session.scalars(sa.select(RefundApproval)).one()
        assert (approval.extra, approval.prefer_wallet) == (10_000, True)
    assert "To the wallet" in client.get("/admin/approvals").get_data(as_text=True)
    assert (
        client.post(f"/admin/approvals/{approval.id}/approve", data={"note": "ok"}).status_code
        == 303
    )
    with app.app_context():
        assert db.session.get(IndividualBooking, ids[0]).refunded_amount == 29_713 + 10_000
        wallet_rows = db.session.scalars(
            sa.select(Refund).where(Refund.approval_id == approval.id)
        ).all()
        assert [(r.destination, r.amount) for r in wallet_rows] == [("WALLET", 10_000)]
    page = client.get(f"/admin/bookings/{ids[0]}/cancel").get_data(as_text=True)
    assert "Refunded ₹397.13 of ₹529.50 paid (₹297.13 at cancellation)" in page
    assert "kept ₹132.37 as the cancellation charge" in page


def test_a_further_refund_refused_where_its_form_is_gone_says_so(app, client, setup, clock):
    """A further refund already awaits approval (a colleague's, or a second tab's): the
    page draws the pending one instead of the form, so the refusal ("already awaits
    approval") put beside the form's amount was on no page, and the admin saw "₹100
    awaits a second administrator" as if it were theirs (review of the admin back office).
    It is said at the top of the page (role="alert")."""
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(30))
    login(client, emails["patient"])
    assert cancel_as_patient(client, visit_id, [ids[0]]).status_code == 303
    client.post("/auth/logout")
    login(client, emails["admin"])
    url = f"/admin/bookings/{ids[0]}/further-refund"
    ask = {"amount": "100", "destination": "wallet", "reason": "Doctor ran an hour late"}
    assert client.post(url, data=ask).status_code == 303
    again = client.post(url, data={**ask, "amount": "50"})
    html = again.get_data(as_text=True)
    alert = re.search(r'role="alert" id="further-refused">(.*?)</div>', html, re.S)
    assert again.status_code == 422 and alert, html
    said = " ".join(re.sub(r"<[^>]+>", " ", alert.group(1)).split())
    assert "not requested" in said and "already awaits approval" in said, said
    with app.app_context():
        assert [a.extra for a in db.session.scalars(sa.select(RefundApproval))] == [10_000]


def test_patient_cannot_choose_the_desk_and_further_refund_needs_a_cancellation(
    app, client, setup, clock
):
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(60))
    login(client, emails["patient"])
    r = _move(
        client, ids[0], {"slot": at(7, 11).isoformat(), "pay_with": "desk", "receipt_no": "R1"}
    )
    assert r.status_code == 422 and "Only the clinic&#39;s desk can take the fee" in r.get_data(
        True
    )
    client.post("/auth/logout")
    login(client, emails["admin"])
    r = client.post(
        f"/admin/bookings/{ids[0]}/further-refund",
        data={"amount": "10", "reason": "A long enough reason"},
    )
    assert r.status_code == 422
    assert "A further refund is only for a cancelled appointment" in r.get_data(True)


@pytest.mark.parametrize("item", ["%C2%B2", str(2**40), "0", "abc"])
def test_an_item_that_names_nothing_chooses_nothing(app, client, setup, item):
    """``?item=²`` passed str.isdigit() and failed int() (a 500)."""
    visit_id, _ids, emails = setup
    login(client, emails["patient"])
    page = client.get(f"/me/visits/{visit_id}/cancel?item={item}")
    assert page.status_code == 200
    assert not re.search(r'<input type="checkbox" name="items"[^>]*\schecked', page.get_data(True))


def test_a_refund_that_changed_since_the_preview_is_asked_again(app, client, setup, clock):
    """The page showed 100 % (48 h or more ahead); the 48 h boundary passed before the
    patient confirmed: nothing is cancelled, the page says the new amount, and confirming
    that amount cancels."""
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(48, 1))
    login(client, emails["patient"])
    page = client.get(f"/me/visits/{visit_id}/cancel?item={ids[0]}").get_data(as_text=True)
    shown = re.search(r'name="shown_refund" value="(\d+)"', page).group(1)
    assert shown == "52950"
    clock.move_to(at(4, 10) - hours(47, 59))
    form = {"items": [ids[0]], "destination": "original", "shown_refund": shown}
    refused = client.post(f"/me/visits/{visit_id}/cancel", data=form)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "The refund is now ₹" in html and "not the ₹529.50 shown" in html
    with app.app_context():
        assert not db.session.scalars(sa.select(Cancellation)).all()
    now_shown = re.search(r'name="shown_refund" value="(\d+)"', html).group(1)
    assert int(now_shown) < 52_950
    done = client.post(f"/me/visits/{visit_id}/cancel", data={**form, "shown_refund": now_shown})
    assert done.status_code == 303


def test_without_javascript_the_refund_is_shown_before_anything_is_cancelled(
    app, client, setup, clock
):
    """Review finding (session 26): without JavaScript nothing is previewed, so the form
    carried no refund shown and the server compared with nothing: the page listed "Refund
    ₹529.50" 48 h ahead, the patient ticked the item and submitted two minutes later, past
    the boundary, and ₹297.13 was refunded without a word. Now a cancellation whose refund
    the patient has not been shown is the page again (422) with the refund of what they
    chose; confirming it cancels."""
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(48, 1))
    login(client, emails["patient"])
    page = client.get(f"/me/visits/{visit_id}/cancel").get_data(as_text=True)
    assert 'name="shown_refund"' not in page  # nothing chosen, nothing previewed
    clock.move_to(at(4, 10) - hours(47, 59))
    form = {"items": [ids[0]], "destination": "original"}
    asked = client.post(f"/me/visits/{visit_id}/cancel", data=form)
    html = asked.get_data(as_text=True)
    assert asked.status_code == 422
    assert "Check the refund below, then confirm" in html
    with app.app_context():
        assert not db.session.scalars(sa.select(Cancellation)).all()
    shown = re.search(r'name="shown_refund" value="(\d+)"', html).group(1)
    assert int(shown) < 52_950  # the refund at this moment, shown before any cancels
    done = client.post(f"/me/visits/{visit_id}/cancel", data={**form, "shown_refund": shown})
    assert done.status_code == 303
    with app.app_context():
        assert db.session.scalars(sa.select(Cancellation.refund)).all() == [int(shown)]


def _hidden(html):
    return dict(re.findall(r'type="hidden" name="(shown_\w+)" value="([^"]*)"', html))


def test_a_refund_shown_for_other_appointments_is_asked_again_without_a_false_reason(
    app, client, setup, clock
):
    """Browser walk (session 26): without JavaScript the preview is the one the page was
    drawn with; a patient who then ticked another appointment too posted the refund shown
    for the first alone and was told "the refund is now …: the appointment is closer to
    its start", which was false. Now a refund shown for another choice is not compared:
    the page shows the refund of what was chosen and asks to confirm it."""
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(30))
    login(client, emails["patient"])
    page = client.get(f"/me/visits/{visit_id}/cancel?item={ids[0]}").get_data(as_text=True)
    form = {"items": [ids[0], ids[1]], "destination": "original", **_hidden(page)}
    asked = client.post(f"/me/visits/{visit_id}/cancel", data=form)
    html = asked.get_data(as_text=True)
    assert asked.status_code == 422
    assert "closer to its start" not in html and "Check the refund below" in html
    done = client.post(f"/me/visits/{visit_id}/cancel", data={**form, **_hidden(html)})
    assert done.status_code == 303


def test_an_admins_refund_shown_for_another_mode_is_asked_again_without_a_false_reason(
    app, client, setup, clock
):
    """The admin's page without JavaScript showed the patient's tier; the admin picked
    "For the clinic" and was told the refund changed as "the appointment is closer to its
    start". Now: the refund of the mode chosen, to confirm."""
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(30))
    login(client, emails["admin"])
    page = client.get(f"/admin/bookings/{ids[0]}/cancel").get_data(as_text=True)
    form = {"mode": "clinic", "destination": "original", "reason": "Clinic closed", **_hidden(page)}
    asked = client.post(f"/admin/bookings/{ids[0]}/cancel", data=form)
    html = asked.get_data(as_text=True)
    assert asked.status_code == 422
    assert "closer to its start" not in html and "Check the refund for what you chose" in html
    assert 'id="refund-now">₹529.50<' in html
    done = client.post(f"/admin/bookings/{ids[0]}/cancel", data={**form, **_hidden(html)})
    assert done.status_code == 303, re.findall(r'class="error"[^>]*>([^<]*)', done.get_data(True))


def test_a_chosen_item_that_cannot_be_cancelled_is_ticked_and_disabled(app, client, setup, clock):
    """Issue #16: the box rendered as ``checkeddisabled=""`` (unticked) while the preview
    listed the item."""
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(20))
    login(client, emails["patient"])
    html = client.get(f"/me/visits/{visit_id}/cancel?item={ids[0]}").get_data(as_text=True)
    assert "checkeddisabled" not in html
    box = re.search(rf'<input type="checkbox" name="items" value="{ids[0]}"[^>]*>', html).group(0)
    assert re.search(r"\schecked[\s>]", box) and re.search(r"\sdisabled[\s>]", box)
    assert f'id="preview-{ids[0]}"' in html
    other = re.search(rf'<input type="checkbox" name="items" value="{ids[1]}"[^>]*>', html)
    assert " checked" not in other.group(0)


def test_provider_cancel_page_after_the_start_says_why_and_offers_no_form(
    app, client, setup, clock
):
    """After the start a provider cannot cancel: the page offered the form and its terms,
    then refused the post (review suspicion). It says why instead."""
    visit_id, ids, emails = setup
    with app.app_context():
        start = db.session.get(IndividualBooking, ids[0]).start_at
    clock.move_to(start + hours(0.25))
    login(client, emails["doctor"])
    html = client.get(f"/provider/bookings/{ids[0]}/cancel").get_data(as_text=True)
    assert 'id="provider-cancel-refused"' in html
    assert "Cancel this appointment</button>" not in html


def test_admin_cancel_for_the_patient_whose_refund_changed_since_the_page_is_asked_again(
    app, client, setup, clock
):
    """The admin's page showed the patient's tier 24 h 1 min ahead (75 % − ₹100 of ₹529.50:
    ₹297.13); confirmed two minutes later the late tier (₹14.75) was applied without a
    word. Now nothing is cancelled, the page says the new amount (422), and confirming
    that amount cancels: the patient's own cancellation's rule."""
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(24, 1))
    login(client, emails["admin"])
    page = client.get(f"/admin/bookings/{ids[0]}/cancel?mode=patient&override=&reason=")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="refund-now">₹297.13<' in html
    shown = re.search(r'name="shown_refund" value="(\d+)"', html).group(1)
    assert shown == "29713"
    clock.move_to(at(4, 10) - hours(23, 59))
    form = {
        "mode": "patient",
        "override": "",
        "destination": "original",
        "reason": "Patient phoned the desk to cancel",
        "shown_refund": shown,
    }
    refused = client.post(f"/admin/bookings/{ids[0]}/cancel", data=form)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "The refund is now ₹14.75, not the ₹297.13 shown" in html
    assert 'id="refund-now">₹14.75<' in html
    with app.app_context():
        assert not db.session.scalars(sa.select(Cancellation)).all()
        assert db.session.get(IndividualBooking, ids[0]).status == "CONFIRMED"
    now_shown = re.search(r'name="shown_refund" value="(\d+)"', html).group(1)
    assert now_shown == "1475"
    done = client.post(f"/admin/bookings/{ids[0]}/cancel", data={**form, "shown_refund": now_shown})
    assert done.status_code == 303
    with app.app_context():
        assert db.session.scalars(sa.select(Cancellation)).one().refund == 1_475


def test_reschedule_fee_that_changed_since_the_page_is_asked_again(
    app, client, setup, clock, world, gateway
):
    """48 h 1 min ahead the button says "Pay ₹61.95 and move" (10 % tier); clicked at
    47 h 59 min, ₹123.90 (20 %) was taken from the wallet without a word. Now nothing is
    charged or moved, the page says the new fee (English and Hindi), online too (no order
    for another amount), and confirming the new fee moves the booking."""
    from portal.booking.models import Reschedule

    visit_id, ids, emails = setup
    credit_wallet(world.patients[0], 20_000)
    clock.move_to(at(4, 10) - hours(48, 1))
    login(client, emails["patient"])
    html = client.get(f"/me/bookings/{ids[0]}/reschedule").get_data(as_text=True)
    assert "Pay ₹61.95 and move" in html
    shown = re.search(r'name="shown_fee" value="(\d+)"', html).group(1)
    assert shown == "6195"
    clock.move_to(at(4, 10) - hours(47, 59))
    orders = len(gateway.sandbox.store.orders)
    form = {**move_fields(html), "slot": at(7, 11).isoformat()}
    for pay_with in ("wallet", "gateway"):
        refused = client.post(
            f"/me/bookings/{ids[0]}/reschedule", data={**form, "pay_with": pay_with}
        )
        html = refused.get_data(as_text=True)
        assert refused.status_code == 422, pay_with
        assert "The reschedule fee is now ₹123.90, not the ₹61.95 shown" in html
        assert "Pay ₹123.90 and move" in html
    assert len(gateway.sandbox.store.orders) == orders
    with app.app_context():
        assert not db.session.scalars(sa.select(Reschedule)).all()
        assert db.session.get(IndividualBooking, ids[0]).start_at == at(4, 10)
    client.post("/language", data={"language": "hi", "next": "/"})
    refresh()  # the test's app context outlives the requests, and Babel's locale with it
    hindi = client.post(
        f"/me/bookings/{ids[0]}/reschedule", data={**form, "pay_with": "wallet"}
    ).get_data(as_text=True)
    assert "समय बदलने का शुल्क अब ₹123.90 है, दिखाया गया ₹61.95 नहीं" in hindi
    now_shown = re.search(r'name="shown_fee" value="(\d+)"', hindi).group(1)
    assert now_shown == "12390"
    done = client.post(
        f"/me/bookings/{ids[0]}/reschedule",
        data={**form, "shown_fee": now_shown, "pay_with": "wallet"},
    )
    assert done.status_code == 303
    with app.app_context():
        assert db.session.scalars(sa.select(Reschedule)).one().total == 12_390


@pytest.mark.parametrize("posted", [None, "-5", "61.95", "", "6195abc"])
def test_a_move_posted_without_a_readable_fee_is_asked_again_not_charged(
    app, client, setup, clock, world, gateway, posted
):
    """Review finding: a move posted without the fee its page showed, or with it not a
    number, skipped the check (it compares only against a figure) and ₹61.95 left the
    wallet. Now it is asked again, nothing charged or moved."""
    from portal.booking import prices
    from portal.booking.models import Reschedule

    visit_id, ids, emails = setup
    credit_wallet(world.patients[0], 20_000)
    clock.move_to(at(4, 10) - hours(48, 1))
    login(client, emails["patient"])
    html = client.get(f"/me/bookings/{ids[0]}/reschedule").get_data(as_text=True)
    assert re.search(r'name="shown_fee" value="(\d+)"', html).group(1) == "6195"
    form = {"slot": at(7, 11).isoformat(), "pay_with": "wallet"}
    form["shown_start"] = move_fields(html)["shown_start"]
    if posted is not None:
        form["shown_fee"] = posted
    refused = client.post(f"/me/bookings/{ids[0]}/reschedule", data=form)
    assert refused.status_code == 422
    assert "Check the reschedule fee shown, then confirm the move again." in refused.text
    assert "Pay ₹61.95 and move" in refused.text  # the page states the fee to confirm
    with app.app_context():
        assert not db.session.scalars(sa.select(Reschedule)).all()
        assert db.session.get(IndividualBooking, ids[0]).start_at == at(4, 10)
        assert prices.wallet_balance(world.patients[0]) == 20_000
    done = client.post(f"/me/bookings/{ids[0]}/reschedule", data={**form, "shown_fee": "6195"})
    assert done.status_code == 303


def _shown(html):
    """The hidden fields of the provider's cancel form: what the page was shown for."""
    tags = re.findall(r'<input[^>]*name="shown_[^>]*>', html)
    return dict(re.search(r'name="(\w+)"[^>]*value="(\d+)"', tag).groups() for tag in tags)


def test_provider_cancel_form_cancels_the_appointment_the_admin_moved_meanwhile(
    app, client, setup, clock, world, users
):
    """The doctor opens "Cancel" for the appointment at 10:00 four days ahead (they cannot
    make that day). An admin meanwhile moves it to 11:00 seven days ahead, a time the doctor
    is free. The doctor's form carried only a reason: it cancelled the moved appointment,
    refunded the patient and took the ₹250 penalty (review finding). The form now carries
    the start (and the refund and penalty) it was shown for; a change is refused (422,
    nothing written) and the page is shown again with the appointment as it is now."""

    visit_id, ids, emails = setup
    login(client, emails["doctor"])
    page = client.get(f"/provider/bookings/{ids[0]}/cancel").get_data(as_text=True)
    shown = _shown(page)
    assert set(shown) == {"shown_start", "shown_refund", "shown_penalty"}

    with app.app_context():  # an admin moves it (no fee: more than 72 h ahead)
        quoted_move(users(world.admin), ids[0], at(7, 11))
        assert db.session.get(IndividualBooking, ids[0]).start_at == at(7, 11)

    refused = client.post(
        f"/provider/bookings/{ids[0]}/cancel", data={"reason": "On leave that day", **shown}
    )
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "was moved" in html and "On leave that day" in html  # the reason is kept
    with app.app_context():
        assert db.session.get(IndividualBooking, ids[0]).status == "CONFIRMED"
        assert db.session.scalars(sa.select(Cancellation)).all() == []
    # The page shown again carries the new time: a second, informed submit cancels it.
    again = client.post(
        f"/provider/bookings/{ids[0]}/cancel", data={"reason": "Away", **_shown(html)}
    )
    assert again.status_code == 303
    with app.app_context():
        assert db.session.get(IndividualBooking, ids[0]).status == "CANCELLED"


def test_provider_cancel_form_refuses_when_the_refund_shown_changed(app, client, setup, clock):
    """The page states the refund and the penalty; a policy changed meanwhile changes them:
    the doctor is asked again, nothing is cancelled."""
    from portal.domain.policy import DEFAULT_POLICY

    visit_id, ids, emails = setup
    login(client, emails["doctor"])
    shown = _shown(client.get(f"/provider/bookings/{ids[0]}/cancel").get_data(as_text=True))
    saved = app.config.get("POLICY")
    app.config["POLICY"] = DEFAULT_POLICY.with_changes(provider_cancellation_penalty=50_000)
    try:
        refused = client.post(
            f"/provider/bookings/{ids[0]}/cancel", data={"reason": "Called away", **shown}
        )
        assert refused.status_code == 422
        assert "₹500" in refused.get_data(as_text=True)
        with app.app_context():
            assert db.session.get(IndividualBooking, ids[0]).status == "CONFIRMED"
    finally:
        app.config["POLICY"] = saved


def test_the_reschedule_fee_choice_error_is_in_hindi(app, client, setup, clock, world):
    """A move that needs a fee (₹61.95, 50 h ahead) sent without choosing how to pay it:
    the error beside the choice is in Hindi (it was printed without ``|t``; browser walk,
    session 26)."""
    from flask_babel import refresh

    from tests.booking.factories import credit_wallet

    _visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(50))
    credit_wallet(world.patients[0], 10_000)
    login(client, emails["patient"])
    client.post("/language", data={"language": "hi", "next": "/"})
    refresh()  # the test's app context outlives the requests
    r = _move(client, ids[0], {"slot": at(7, 11).isoformat()})
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "समय बदलने का शुल्क कैसे चुकाएँगे, चुनें" in html
    assert "Choose how to pay the reschedule fee" not in html


def test_admin_cancel_posted_without_the_refund_shown_is_asked_again_and_writes_nothing(
    app, client, setup, clock
):
    """A post without ``shown_refund`` (a hand-made post, a page drawn before the field)
    cancelled at whatever was due: the service took a missing figure as "not checked".
    Now 422, the page with the refund of what was chosen to confirm, nothing cancelled;
    confirming it cancels."""
    visit_id, ids, emails = setup
    clock.move_to(at(4, 10) - hours(30))
    login(client, emails["admin"])
    form = {"mode": "patient", "destination": "original", "reason": "Patient phoned the desk"}
    asked = client.post(f"/admin/bookings/{ids[0]}/cancel", data=form)
    html = asked.get_data(as_text=True)
    assert asked.status_code == 422
    assert "Check the refund for what you chose, then confirm." in html
    assert 'id="refund-now">₹297.13<' in html
    with app.app_context():
        assert not db.session.scalars(sa.select(Cancellation)).all()
        assert not db.session.scalars(sa.select(Refund)).all()
        assert db.session.get(IndividualBooking, ids[0]).status == "CONFIRMED"
    assert _hidden(html)["shown_refund"] == "29713"
    done = client.post(f"/admin/bookings/{ids[0]}/cancel", data={**form, **_hidden(html)})
    assert done.status_code == 303
    with app.app_context():
        assert db.session.scalars(sa.select(Cancellation.refund)).all() == [29_713]


def test_provider_cancel_posted_without_what_the_page_stated_is_asked_again_in_hindi(
    app, client, setup, clock
):
    """A post with the reason alone (no ``shown_start``/``shown_refund``/``shown_penalty``)
    cancelled the appointment as it was then, refund and penalty unchecked. Now 422 with
    the page as it is and the doctor's words (English, then Hindi), the reason kept,
    nothing cancelled; the page's own fields cancel."""
    visit_id, ids, emails = setup
    login(client, emails["doctor"])
    url = f"/provider/bookings/{ids[0]}/cancel"
    asked = client.post(url, data={"reason": "Called to surgery"})
    html = asked.get_data(as_text=True)
    assert asked.status_code == 422
    assert "Check the time, the refund and the penalty above, then confirm again." in html
    assert "Called to surgery" in html
    client.post("/language", data={"language": "hi", "next": "/"})
    refresh()  # the test's app context outlives the requests
    asked = client.post(url, data={"reason": "Called to surgery", "shown_penalty": "25000"})
    html = asked.get_data(as_text=True)
    assert asked.status_code == 422
    assert "ऊपर लिखा समय, रिफ़ंड और जुर्माना देखें, फिर से पुष्टि करें।" in html
    with app.app_context():
        assert db.session.get(IndividualBooking, ids[0]).status == "CONFIRMED"
        assert not db.session.scalars(sa.select(Cancellation)).all()
        assert not db.session.scalars(sa.select(Refund)).all()
    done = client.post(url, data={"reason": "Called to surgery", **_shown(html)})
    assert done.status_code == 303
    with app.app_context():
        assert db.session.get(IndividualBooking, ids[0]).status == "CANCELLED"


def test_provider_cancel_reason_is_marked_required_before_it_is_sent(app, client, setup, clock):
    """Review: the doctor's reason is required (refunds.cancel refuses an empty one) but
    the page said so only once refused: the field is ``required`` and its label says so."""
    visit_id, ids, emails = setup
    login(client, emails["doctor"])
    page = client.get(f"/provider/bookings/{ids[0]}/cancel").get_data(as_text=True)
    textarea = re.search(r'<textarea[^>]*name="reason"[^>]*>', page).group(0)
    assert re.search(r"\brequired\b", textarea), textarea
    label = re.search(r'<label for="reason">([^<]*)</label>', page).group(1)
    assert "(required" in label, label


@pytest.fixture
def team_setup(app, world, users, gateway):
    """A consultation with two doctors (a team appointment), booked and paid: (item id,
    the first doctor's email, the second doctor's user id)."""
    with_known_passwords()
    patient = users(world.patients[0])
    visit = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0], world.doctors[1]], at(4, 14))]
    )
    first, second = (db.session.get(Provider, d) for d in world.doctors[:2])
    ids = visit.items[0].id, users(first.user_id).email, second.user_id
    db.session.remove()
    return ids


def test_the_provider_cancel_page_of_a_team_says_it_cancels_for_the_whole_team(
    app, client, team_setup, setup, clock
):
    """Review finding: nothing on the doctor's cancel page of a team appointment said the
    appointment goes for the co-doctor too. It says so, naming them (not the reader), in
    the doctor's language; cancelling tells the co-doctor and frees their time too. A
    doctor's own appointment says nothing of a team."""
    from portal.booking.models import SlotClaim
    from portal.notify.models import Notification

    item_id, email, second_user = team_setup
    login(client, email)
    url = f"/provider/bookings/{item_id}/cancel"
    html = client.get(url).get_data(as_text=True)
    said = re.search(r'<p[^>]*id="provider-cancel-team"[^>]*>(.*?)</p>', html, re.S)
    assert said, "the page does not say the team loses the appointment"
    assert said.group(1).strip() == (
        "This cancels the appointment for the whole team: Dr Doc 2 will be told too."
    )
    own = client.get(f"/provider/bookings/{setup[1][0]}/cancel").get_data(as_text=True)
    assert 'id="provider-cancel-team"' not in own
    client.post("/language", data={"language": "hi", "next": "/"})
    refresh()
    html = client.get(url).get_data(as_text=True)
    assert "इससे अपॉइंटमेंट पूरी टीम के लिए रद्द हो जाएगा: Dr Doc 2 को भी बताया जाएगा।" in html
    done = client.post(url, data={"reason": "Called to surgery", **_shown(html)})
    assert done.status_code == 303
    with app.app_context():
        told = db.session.scalars(
            sa.select(Notification).where(
                Notification.user_id == second_user, Notification.kind == "booking.cancelled"
            )
        ).all()
        assert len(told) == 1 and "Dr Doc 1" in told[0].body
        live = sa.select(SlotClaim).where(SlotClaim.booking_id == item_id, SlotClaim.live)
        assert db.session.scalars(live).all() == []


def test_the_queue_says_a_desk_paid_further_refund_goes_to_the_wallet(
    app, world, users, make_user, clock
):
    """A further refund "to the original payment" of a visit paid in cash at the desk:
    there is no Razorpay payment to send it back to, so it goes to the wallet. The
    approvals queue told the checking administrator "To the original payment." (review
    r2c); it says where the money will go."""
    from portal.booking import visits
    from portal.refunds import approvals
    from tests.booking.factories import quoted_desk_payment
    from tests.plugin import sign_in
    from tests.refunds.helpers import quoted_admin_cancel

    admin = users(world.admin)
    item = visits.add_item(
        admin,
        patient_id=world.patients[0],
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(4, 10),
    )
    item_id = item.id
    quoted_desk_payment(admin, item.master_id, "R-500")
    quoted_admin_cancel(
        admin,
        item_id,
        "patient asked to cancel, part refund agreed",
        mode="clinic",
        override=20_000,
    )
    approval_id = approvals.request_further_refund(
        admin, item_id, 1_000, "goodwill for the long wait", prefer_wallet=False
    ).id
    checker_user = make_user("admin", email="checker@example.com")
    with_known_passwords()
    db.session.remove()
    checker = sign_in(app, checker_user)
    queue = re.sub(r"\s+", " ", checker.get("/admin/approvals").get_data(as_text=True))
    assert "To the wallet." in queue and "To the original payment" not in queue

    checker.post(f"/admin/approvals/refund/{approval_id}/approve", data={"note": "ok"})
    rows = db.session.scalars(sa.select(Refund).where(Refund.approval_id == approval_id)).all()
    assert [(r.destination, r.amount) for r in rows] == [("WALLET", 1_000)]
