"""The admin reschedule page: the quote and free times (htmx swaps the times and the fee),
a move paid from the patient's wallet or at the desk, the 24-hour rule and its override,
errors beside their field with 422, who may use it, CSRF."""

import re

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.booking import reschedule as rs
from portal.booking.models import PAY_DESK, PAY_NONE, PAY_WALLET, IndividualBooking, Reschedule
from portal.catalog.models import Provider
from portal.domain.states import RescheduleStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from tests.booking.factories import at, credit_wallet
from tests.refunds.helpers import (
    RESCHEDULE_TOO_LATE,
    book_and_pay,
    cancel_as_patient,
    hours,
    login,
    move_fields,
    post_move,
    with_known_passwords,
)

START = at(4, 10)  # Friday 5 June 2026, 10:00 IST
NEW = at(7, 11)  # Monday 8 June 2026, 11:00 IST
FEE_10 = 6_195  # 10 % tier on ₹500: ₹50 + ₹2.50 platform + ₹9.45 GST
FEE_20 = 12_390  # 20 % tier (also an overridden late move): ₹100 + ₹5 + ₹18.90


def _slots(html):
    return re.findall(r'<input[^>]*name="slot"[^>]*value="([^"]+)"', html)


def _url(item_id):
    return f"/admin/bookings/{item_id}/reschedule"


def _post(client, item_id, data):
    return post_move(client, _url(item_id), data)


@pytest.fixture
def setup(app, world, users, gateway):
    """A paid visit: a consultation at START and a blood test an hour later."""
    with_known_passwords()
    patient = users(world.patients[0])
    visit = book_and_pay(
        world,
        patient,
        gateway,
        [(world.consult, [world.doctors[0]], START), (world.lab, [world.lab_provider], at(4, 11))],
    )
    ids = [i.id for i in visit.items]
    emails = {
        "patient": patient.email,
        "admin": users(world.admin).email,
        "doctor": db.session.get(User, db.session.get(Provider, world.doctors[0]).user_id).email,
    }
    db.session.remove()
    return visit.id, ids, emails


def _item(app, item_id):
    with app.app_context():
        item = db.session.get(IndividualBooking, item_id)
        db.session.expunge(item)
        return item


def test_page_shows_the_booking_quote_and_free_times(app, client, setup, clock, world):
    visit_id, ids, emails = setup
    clock.move_to(START - hours(50))
    credit_wallet(world.patients[0], 10_000)
    login(client, emails["admin"])
    page = client.get(_url(ids[0]))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Consultation" in html and "Dr Doc 1" in html and "Patient 1" in html
    assert 'id="current-time">Fri 05 Jun 2026, 10:00 IST<' in html
    assert 'id="wallet-balance">₹100<' in html
    assert "Penalty (10% of the ₹500 service fee)" in html and "₹50" in html
    assert "Platform fee" in html and "₹2.50" in html and "₹9.45" in html
    assert 'id="fee-total">₹61.95<' in html
    assert "Override the 24-hour rule" in html and "Paid at the desk" in html
    assert "The patient&#39;s wallet" in html or "The patient's wallet" in html
    slots = _slots(html)
    assert slots and all(s.endswith("+00:00") for s in slots)
    assert re.search(r'<input[^>]*value="wallet"', html) and not re.search(
        r'<input[^>]*disabled[^>]*value="wallet"|<input[^>]*value="wallet"[^>]*disabled', html
    )
    # The day picker reloads only the free times.
    part = client.get(
        f"{_url(ids[0])}?day=2026-06-08", headers={"HX-Request": "true", "HX-Target": "slots"}
    )
    text = part.get_data(as_text=True)
    assert part.status_code == 200 and "<html" not in text and "Reschedule fee" not in text
    assert "Free times from Mon 08 Jun 2026" in text and _slots(text)
    assert _slots(text)[0] == at(7, 9).isoformat()
    # The visit page links here for the confirmed items.
    detail = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    assert f'href="{_url(ids[0])}"' in detail and f'href="{_url(ids[1])}"' in detail


def test_move_paid_from_the_patients_wallet(app, client, setup, clock, world):
    visit_id, ids, emails = setup
    clock.move_to(START - hours(50))
    credit_wallet(world.patients[0], 10_000)
    login(client, emails["admin"])
    r = _post(client, ids[0], {"slot": NEW.isoformat()})
    assert r.status_code == 422 and rs.MSG_PAY_WITH in r.get_data(True)
    # The online checkout is the patient's; the admin page offers the wallet or the desk.
    r = _post(client, ids[0], {"slot": NEW.isoformat(), "pay_with": "gateway"})
    assert r.status_code == 422 and "Not a valid choice" in r.get_data(True)
    r = _post(client, ids[0], {"slot": NEW.isoformat(), "pay_with": "wallet"})
    assert r.status_code == 303 and r.location.endswith(f"/admin/visits/{visit_id}")
    page = client.get(r.location).get_data(as_text=True)
    assert "Moved to Mon 08 Jun 2026, 11:00 IST." in page
    with app.app_context():
        assert db.session.get(IndividualBooking, ids[0]).start_at == NEW
        assert balance(chart.patient_wallet(world.patients[0])) == 10_000 - FEE_10
        row = db.session.scalars(sa.select(Reschedule)).one()
        assert (row.pay_with, row.total, row.status) == (PAY_WALLET, FEE_10, RescheduleStatus.DONE)


def test_wallet_too_low_is_shown_beside_pay_with(app, client, setup, clock):
    visit_id, ids, emails = setup
    clock.move_to(START - hours(50))
    login(client, emails["admin"])
    r = _post(client, ids[0], {"slot": NEW.isoformat(), "pay_with": "wallet"})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and rs.MSG_WALLET_LOW in html
    assert html.index(rs.MSG_WALLET_LOW) > html.index("Pay the fee with")
    assert _item(app, ids[0]).start_at == START


def test_move_paid_at_the_desk_needs_a_receipt(app, client, setup, clock, world):
    visit_id, ids, emails = setup
    clock.move_to(START - hours(50))
    login(client, emails["admin"])
    r = _post(client, ids[0], {"slot": NEW.isoformat(), "pay_with": "desk", "receipt_no": "  "})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and rs.MSG_RECEIPT in html
    assert html.index(rs.MSG_RECEIPT) > html.index("Desk receipt number")
    assert _item(app, ids[0]).start_at == START
    r = _post(
        client, ids[0], {"slot": NEW.isoformat(), "pay_with": "desk", "receipt_no": "DESK-0042"}
    )
    assert r.status_code == 303
    with app.app_context():
        assert db.session.get(IndividualBooking, ids[0]).start_at == NEW
        row = db.session.scalars(sa.select(Reschedule)).one()
        assert (row.pay_with, row.receipt_no, row.total) == (PAY_DESK, "DESK-0042", FEE_10)
        assert balance(chart.patient_wallet(world.patients[0])) == 0


def test_within_24_hours_refused_unless_overridden(app, client, setup, clock, world):
    visit_id, ids, emails = setup
    clock.move_to(START - hours(20))
    credit_wallet(world.patients[0], 20_000)
    login(client, emails["admin"])
    html = client.get(_url(ids[0])).get_data(as_text=True)
    assert RESCHEDULE_TOO_LATE in html and "fee-total" not in html
    r = client.post(_url(ids[0]), data={"slot": NEW.isoformat(), "pay_with": "wallet"})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and RESCHEDULE_TOO_LATE in html
    assert _item(app, ids[0]).start_at == START
    # Ticking the box reloads the fee: the overridden quote, charged the highest tier.
    part = client.get(
        f"{_url(ids[0])}?override=y", headers={"HX-Request": "true", "HX-Target": "fee"}
    )
    text = part.get_data(as_text=True)
    assert part.status_code == 200 and "<html" not in text and "Free times" not in text
    assert "Penalty (20% of the ₹500 service fee, administrator override)" in text
    assert 'id="fee-total">₹123.90<' in text and RESCHEDULE_TOO_LATE not in text
    r = _post(
        client,
        ids[0],
        {"slot": NEW.isoformat(), "override": "y", "pay_with": "wallet", "shown_fee": FEE_20},
    )
    assert r.status_code == 303
    with app.app_context():
        assert db.session.get(IndividualBooking, ids[0]).start_at == NEW
        assert balance(chart.patient_wallet(world.patients[0])) == 20_000 - FEE_20
        assert db.session.scalars(sa.select(Reschedule)).one().overridden


def test_the_override_names_the_policys_cut_off(app, client, setup, clock):
    """The box read "Override the 24-hour rule" whatever the policy's cut-off (review
    finding: POLICY.md's figures are data): it names the cut-off of the booking's policy."""
    from datetime import timedelta

    from portal.domain.policy import DEFAULT_POLICY

    visit_id, ids, emails = setup
    saved = app.config.get("POLICY")
    app.config["POLICY"] = DEFAULT_POLICY.with_changes(reschedule_min_notice=timedelta(hours=12))
    try:
        clock.move_to(START - hours(10))
        login(client, emails["admin"])
        html = client.get(_url(ids[0])).get_data(as_text=True)
    finally:
        app.config["POLICY"] = saved
    assert "Override the 12-hour rule" in html and "24-hour" not in html
    assert "Reschedule not allowed within 12 hours of appointment" in html


def test_slot_errors_and_a_booking_that_is_not_confirmed(app, client, setup, clock):
    visit_id, ids, emails = setup
    login(client, emails["admin"])
    r = _post(client, ids[0], {})
    assert r.status_code == 422 and "Choose a time" in r.get_data(True)
    r = _post(client, ids[0], {"slot": at(5, 10).isoformat()})  # Saturday
    assert r.status_code == 422 and "Appointments not available on weekends" in r.get_data(True)
    r = _post(client, ids[0], {"slot": "not a time", "day": "soon"})
    assert r.status_code == 422
    assert client.get(f"{_url(ids[0])}?day=soon").status_code == 200
    assert client.get(_url(999_999)).status_code == 404
    assert client.post(_url(999_999), data={"slot": NEW.isoformat()}).status_code == 404
    # Cancelled by the patient: the page still renders; a move is refused with the message.
    client.post("/auth/logout")
    login(client, emails["patient"])
    assert cancel_as_patient(client, visit_id, [ids[1]], "wallet").status_code == 303
    client.post("/auth/logout")
    login(client, emails["admin"])
    page = client.get(_url(ids[1]))
    assert page.status_code == 200
    assert "Only confirmed appointments can be moved" in page.get_data(True)
    detail = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    assert f'href="{_url(ids[0])}"' in detail and f'href="{_url(ids[1])}"' not in detail
    r = _post(client, ids[1], {"slot": at(7, 11).isoformat()})
    assert r.status_code == 422 and rs.MSG_NOT_CONFIRMED in r.get_data(True)


@pytest.mark.parametrize("who", ["patient", "doctor"])
def test_patients_and_providers_are_refused(app, client, setup, clock, who):
    visit_id, ids, emails = setup
    login(client, emails[who])
    assert client.get(_url(ids[0])).status_code in (403, 404)
    r = client.post(_url(ids[0]), data={"slot": NEW.isoformat(), "pay_with": "wallet"})
    assert r.status_code in (403, 404)
    assert _item(app, ids[0]).start_at == START


def test_post_without_csrf_token_is_refused(app, client, setup, clock, monkeypatch):
    visit_id, ids, emails = setup
    login(client, emails["admin"])
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    r = _post(client, ids[0], {"slot": NEW.isoformat()})
    assert r.status_code == 400
    assert _item(app, ids[0]).start_at == START


def test_no_fee_far_ahead_moves_without_pay_with(app, client, setup, clock, world):
    visit_id, ids, emails = setup
    login(client, emails["admin"])
    html = client.get(_url(ids[0])).get_data(as_text=True)
    assert "No fee" in html and 'name="pay_with"' not in html
    r = _post(client, ids[0], {"slot": NEW.isoformat()})
    assert r.status_code == 303
    with app.app_context():
        row = db.session.scalars(sa.select(Reschedule)).one()
        assert (row.total, row.pay_with, row.new_start) == (0, PAY_NONE, NEW)
        assert balance(chart.patient_wallet(world.patients[0])) == 0


def test_a_wallet_short_of_the_fee_cannot_be_chosen(app, client, setup, clock):
    visit_id, ids, emails = setup
    clock.move_to(START - hours(60))
    login(client, emails["admin"])
    html = client.get(_url(ids[0])).get_data(as_text=True)
    assert "(balance ₹0, not enough)" in html
    assert re.search(
        r'<input[^>]*disabled[^>]*value="wallet"|<input[^>]*value="wallet"[^>]*disabled', html
    )


def test_a_fee_that_changed_since_the_page_is_asked_again(app, client, setup, clock, world):
    """The page quoted the 10 % tier (₹61.95) 48 h 1 min ahead; confirmed at the desk at
    47 h 59 min, ₹123.90 was recorded against the receipt written for ₹61.95. Now nothing
    is taken or moved, the page says the new fee, and confirming it moves the booking."""
    visit_id, ids, emails = setup
    clock.move_to(START - hours(48, 1))
    login(client, emails["admin"])
    html = client.get(_url(ids[0])).get_data(as_text=True)
    assert 'id="fee-total">₹61.95<' in html
    shown = re.search(r'name="shown_fee" value="(\d+)"', html).group(1)
    assert shown == str(FEE_10)
    clock.move_to(START - hours(47, 59))
    form = {
        "slot": NEW.isoformat(),
        "pay_with": "desk",
        "receipt_no": "DESK-0042",
        **move_fields(html),
    }
    # Posted without the fee shown (a hand-made post): asked again, nothing recorded.
    unshown = client.post(_url(ids[0]), data={k: v for k, v in form.items() if k != "shown_fee"})
    assert unshown.status_code == 422
    assert "Check the reschedule fee shown, then confirm the move again." in unshown.text
    refused = client.post(_url(ids[0]), data=form)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "The reschedule fee is now ₹123.90, not the ₹61.95 shown" in html
    assert 'id="fee-total">₹123.90<' in html
    with app.app_context():
        assert not db.session.scalars(sa.select(Reschedule)).all()
        assert balance(chart.CASH_DESK) == 0
    assert _item(app, ids[0]).start_at == START
    now_shown = re.search(r'name="shown_fee" value="(\d+)"', html).group(1)
    assert now_shown == str(FEE_20)
    done = client.post(_url(ids[0]), data={**form, "shown_fee": now_shown})
    assert done.status_code == 303
    with app.app_context():
        row = db.session.scalars(sa.select(Reschedule)).one()
        assert (row.pay_with, row.total, row.receipt_no) == (PAY_DESK, FEE_20, "DESK-0042")


def test_the_admins_override_names_a_90_minute_cut_off(app):
    from datetime import timedelta

    from portal.domain.policy import DEFAULT_POLICY
    from portal.web.forms.booking import AdminMoveForm

    policy = DEFAULT_POLICY.with_changes(reschedule_min_notice=timedelta(minutes=90))
    with app.test_request_context():
        form = AdminMoveForm(policy=policy, meta={"csrf": False})
    assert form.override.label.text == "Override the 1.5-hour rule"


@pytest.mark.parametrize("page", ["reschedule", "rebook"])
def test_a_day_beyond_the_listed_days_lists_the_last_one(app, client, setup, clock, page):
    """9999-12-31 overflowed the free-times search (a 500, review rev2): a day beyond
    ``LIST_DAYS_AHEAD`` (90) lists the last day with a message beside the day; posted, it
    is the span's message (422) and nothing is moved or booked."""
    visit_id, ids, emails = setup
    login(client, emails["admin"])
    url = f"/admin/bookings/{ids[0]}/{page}"
    shown = client.get(f"{url}?day=9999-12-31")
    html = shown.get_data(as_text=True)
    assert shown.status_code == 200
    assert "Free times from Sun 30 Aug 2026" in html  # Mon 1 June + 90 days
    assert "Free times are shown at most 90 days ahead." in html
    assert re.search(r'<input[^>]*name="day"[^>]*value="2026-08-30"', html)
    inside = client.get(f"{url}?day=2026-08-30").get_data(as_text=True)
    assert "Free times from Sun 30 Aug 2026" in inside and "at most 90 days" not in inside
    with app.app_context():
        visits = db.session.scalar(sa.select(sa.func.count()).select_from(IndividualBooking))
    posted = client.post(url, data={"day": "9999-12-31", "slot": NEW.isoformat()})
    assert posted.status_code == 422
    assert "Enter a date between 1900 and 2099." in posted.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(IndividualBooking, ids[0]).start_at == START
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Reschedule)) == 0
        assert (
            db.session.scalar(sa.select(sa.func.count()).select_from(IndividualBooking)) == visits
        )
