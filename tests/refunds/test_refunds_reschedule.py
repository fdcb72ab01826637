"""Reschedule tiers at the boundaries (72 h, 48 h, 24 h, a minute either side), team
surcharge, paying by wallet or checkout, the move in one transaction, rebooking."""

import pytest
import sqlalchemy as sa

from portal.booking import holds, lifecycle, reschedule_payment, visits
from portal.booking import reschedule as rs
from portal.booking.errors import BookingError, SlotUnavailable
from portal.booking.models import FeeCapture, IndividualBooking, Reschedule, SlotClaim
from portal.db import unit_of_work
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from tests.booking.factories import at, credit_wallet
from tests.refunds.helpers import (
    RESCHEDULE_TOO_LATE,
    book_and_pay,
    hours,
    quoted_cancel,
    quoted_move,
)

START = at(4, 10)  # Friday 5 June 2026, 10:00 IST
NEW = at(7, 11)  # Monday 8 June 2026, 11:00 IST
F = 50_000


def fee(bps):
    penalty = F * bps // 10_000
    platform = (penalty * 500 + 5_000) // 10_000
    gst = ((penalty + platform) * 1_800 + 5_000) // 10_000
    return penalty, platform, gst, penalty + platform + gst


@pytest.fixture
def quarter_hours(app):
    """Slots every 15 minutes (``SLOT_STEP_MINUTES``): a patient's move of a 30-minute
    booking by a quarter of an hour, overlapping its own time, is then on the grid."""
    saved = app.config["SLOT_STEP_MINUTES"]
    app.config["SLOT_STEP_MINUTES"] = 15
    yield
    app.config["SLOT_STEP_MINUTES"] = saved


def booked(world, users, gateway, providers=None):
    patient = users(world.patients[0])
    visit = book_and_pay(
        world, patient, gateway, [(world.consult, providers or [world.doctors[0]], START)]
    )
    return patient, visit.items[0]


@pytest.mark.parametrize(
    "before, bps",
    [
        (hours(72, 1), 0),
        (hours(72), 1_000),
        (hours(71, 59), 1_000),
        (hours(48, 1), 1_000),
        (hours(48), 2_000),
        (hours(47, 59), 2_000),
        (hours(24, 1), 2_000),
    ],
)
def test_fee_tiers_at_the_boundaries(world, users, gateway, clock, before, bps):
    patient, item = booked(world, users, gateway)
    clock.move_to(START - before)
    _, q = rs.quote(patient, item.id)
    penalty, platform, gst, total = fee(bps)
    assert (q.allowed, q.penalty_bps, q.penalty, q.platform_fee, q.gst, q.total) == (
        True,
        bps,
        penalty,
        platform,
        gst,
        total,
    )
    credit_wallet(patient.id, total or 1)
    result = rs.reschedule(
        patient,
        item.id,
        NEW,
        pay_with="wallet" if total else None,
        expected_fee=q.total,
        shown_start=item.start_at,
    )
    assert result.moved and result.redirect_url is None
    db.session.expire_all()
    item = db.session.get(IndividualBooking, item.id)
    assert item.start_at == NEW and item.status == "CONFIRMED"
    live = db.session.scalars(sa.select(SlotClaim).where(SlotClaim.live.is_(True))).all()
    assert {c.start_at for c in live} == {NEW} and len(live) == 2  # doctor + patient
    assert balance(chart.patient_wallet(patient.id)) == (0 if total else 1)
    commission = (penalty * 500 + 5_000) // 10_000
    assert balance(chart.provider_payable(world.doctors[0])) == penalty - commission


@pytest.mark.parametrize("before", [hours(24), hours(23, 59)])
def test_refused_within_24_hours_unless_an_admin_overrides(world, users, gateway, clock, before):
    patient, item = booked(world, users, gateway)
    clock.move_to(START - before)
    with pytest.raises(BookingError) as err:
        quoted_move(patient, item.id, NEW)
    assert err.value.message == RESCHEDULE_TOO_LATE
    admin = users(world.admin)
    with pytest.raises(rs.PermissionDenied):
        quoted_move(patient, item.id, NEW, admin_override=True)
    credit_wallet(patient.id, fee(2_000)[3])
    result = quoted_move(admin, item.id, NEW, pay_with="wallet", admin_override=True)
    assert result.moved and result.reschedule.overridden
    assert result.reschedule.total == fee(2_000)[3]  # the override lifts the refusal, not the fee


def test_team_appointment_adds_five_points(world, users, gateway, clock):
    patient, item = booked(world, users, gateway, [world.doctors[0], world.doctors[1]])
    clock.move_to(START - hours(80))
    _, q = rs.quote(patient, item.id)
    assert q.penalty_bps == 500 and q.total == fee(500)[3]
    credit_wallet(patient.id, q.total)
    rs.reschedule(patient, item.id, NEW, pay_with="wallet", expected_fee=q.total, shown_start=START)
    # The penalty less commission is split over the team.
    shares = [balance(chart.provider_payable(p)) for p in world.doctors]
    assert sum(shares) == q.penalty - 2 * ((q.penalty // 2 * 500 + 5_000) // 10_000)


def test_new_slot_obeys_every_booking_rule(world, users, gateway, clock, quarter_hours):
    patient, item = booked(world, users, gateway)
    with pytest.raises(BookingError) as err:
        quoted_move(patient, item.id, at(5, 10))  # Saturday
    assert err.value.message == "Appointments not available on weekends"
    with pytest.raises(BookingError) as err:
        quoted_move(patient, item.id, at(7, 19))
    assert err.value.message == "Appointments only available 9 AM - 6 PM"
    other = users(world.patients[1])
    visits.add_item(
        other,
        patient_id=other.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=NEW,
    )
    with pytest.raises(SlotUnavailable):
        quoted_move(patient, item.id, NEW)
    # Its own time never blocks a move that overlaps it.
    result = quoted_move(patient, item.id, at(4, 10, 15))
    assert result.moved


def test_wallet_too_low_moves_nothing(world, users, gateway, clock):
    patient, item = booked(world, users, gateway)
    clock.move_to(START - hours(50))
    with pytest.raises(BookingError) as err:
        quoted_move(patient, item.id, NEW, pay_with="wallet")
    assert err.value.message == rs.MSG_WALLET_LOW
    with pytest.raises(BookingError) as err:
        quoted_move(patient, item.id, NEW)
    assert err.value.message == rs.MSG_PAY_WITH
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item.id).start_at == START
    assert not db.session.scalars(sa.select(Reschedule)).all()


def _nothing_charged_or_moved(patient, item, wallet, orders, gateway):
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item.id).start_at == START
    assert not db.session.scalars(sa.select(Reschedule)).all()
    assert balance(chart.patient_wallet(patient.id)) == wallet
    assert balance(chart.provider_payable(item.providers[0].id)) == 0
    assert len(gateway.sandbox.store.orders) == orders  # no order for any amount


@pytest.mark.parametrize("pay_with", ["wallet", "gateway"])
def test_a_stale_fee_is_refused_by_the_service_itself(world, users, gateway, clock, pay_with):
    """Quoted 48 h 1 min ahead (10 %: ₹61.95), confirmed at 47 h 59 min (20 %: ₹123.90):
    the service refuses, whoever calls it, nothing charged, ordered or moved; confirming
    the new fee moves it."""
    patient, item = booked(world, users, gateway)
    clock.move_to(START - hours(48, 1))
    _, shown = rs.quote(patient, item.id)
    assert shown.total == fee(1_000)[3] == 6_195
    credit_wallet(patient.id, 20_000)
    orders = len(gateway.sandbox.store.orders)
    clock.move_to(START - hours(47, 59))
    callback = "http://portal.test/cb/__ID__"
    with pytest.raises(BookingError) as err:
        rs.reschedule(
            patient,
            item.id,
            NEW,
            pay_with=pay_with,
            callback_url=callback,
            expected_fee=6_195,
            shown_start=START,
        )
    assert err.value.message == (
        "The reschedule fee is now ₹123.90, not the ₹61.95 shown: the appointment is closer "
        "to its start. Check the new fee and confirm again."
    )
    _nothing_charged_or_moved(patient, item, 20_000, orders, gateway)
    result = rs.reschedule(
        patient,
        item.id,
        NEW,
        pay_with=pay_with,
        callback_url=callback,
        expected_fee=12_390,
        shown_start=START,
    )
    assert result.reschedule.total == 12_390


def test_a_move_without_the_fee_shown_is_refused(world, users, gateway, clock):
    """``expected_fee`` is required: an internal caller that shows no fee cannot move a
    booking at whatever is due now (it defaulted to None, which skipped the check, and
    ₹61.95 left the wallet). Without it the call is a TypeError; None, or not a whole
    number of paise, is refused as the web's unreadable ``shown_fee`` is."""
    patient, item = booked(world, users, gateway)
    clock.move_to(START - hours(60))
    credit_wallet(patient.id, 20_000)
    orders = len(gateway.sandbox.store.orders)
    with pytest.raises(TypeError, match="expected_fee"):
        rs.reschedule(patient, item.id, NEW, pay_with="wallet")
    for unshown in (None, "6195", 61.95, True):
        with pytest.raises(BookingError) as err:
            rs.reschedule(
                patient,
                item.id,
                NEW,
                pay_with="wallet",
                expected_fee=unshown,
                shown_start=START,
            )
        assert err.value.message == rs.MSG_FEE_UNSHOWN, unshown
    _nothing_charged_or_moved(patient, item, 20_000, orders, gateway)


def test_fee_paid_by_checkout_then_moved_once(world, users, gateway, clock):
    patient, item = booked(world, users, gateway)
    clock.move_to(START - hours(60))
    result = quoted_move(
        patient,
        item.id,
        NEW,
        pay_with="gateway",
        callback_url="http://portal.test/me/reschedules/__ID__/paid",
    )
    assert result.redirect_url and not result.moved
    resched = result.reschedule
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item.id).start_at == START  # not before paying
    params = gateway.pay(resched.razorpay_order_id)
    done = reschedule_payment.complete_callback(params)
    assert done.status == "DONE"
    gateway.deliver()  # the webhook too: nothing twice
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item.id).start_at == NEW
    assert balance(chart.GATEWAY_CLEARING) == item.paid_amount + fee(1_000)[3]
    assert balance(chart.GST_PAYABLE) == item.gst + fee(1_000)[2]


def test_fee_paid_and_the_tab_closed_the_webhook_alone_moves_it(world, users, gateway, clock):
    # No signed return: the capture webhooks are not settled where they arrive (the order
    # is a reschedule fee's, not a visit payment's), so their job moves the booking.
    patient, item = booked(world, users, gateway)
    clock.move_to(START - hours(60))
    resched = _pay_online(patient, item).reschedule
    gateway.pay(resched.razorpay_order_id)
    gateway.deliver()
    db.session.expire_all()
    assert db.session.get(Reschedule, resched.id).status == "DONE"
    assert db.session.get(IndividualBooking, item.id).start_at == NEW
    assert balance(chart.GATEWAY_CLEARING) == item.paid_amount + fee(1_000)[3]


def _pay_online(patient, item, start=NEW):
    return quoted_move(
        patient, item.id, start, pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    )


def _book_other(world, users, start):
    other = users(world.patients[1])
    return visits.add_item(
        other,
        patient_id=other.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=start,
    )


def test_new_time_is_held_while_the_fee_is_paid(world, users, gateway, clock):
    from portal.catalog import busy

    patient, item = booked(world, users, gateway)
    clock.move_to(START - hours(60))
    result = _pay_online(patient, item)
    new_end = result.reschedule.new_end
    # Nobody else can take the held time, and find-a-doctor shows it busy.
    with pytest.raises(SlotUnavailable):
        _book_other(world, users, NEW)
    assert (NEW, new_end) in busy.busy_intervals([world.doctors[0]], NEW, new_end)[world.doctors[0]]
    # The booking itself still stands at its old time until the fee arrives.
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item.id).start_at == START
    done = reschedule_payment.complete_callback(gateway.pay(result.reschedule.razorpay_order_id))
    gateway.deliver()
    assert done.status == "DONE"
    db.session.expire_all()
    live = db.session.scalars(
        sa.select(SlotClaim).where(SlotClaim.booking_id == item.id, SlotClaim.live.is_(True))
    ).all()
    # The held claims are now the booking's own, no longer marked as a hold.
    assert {(c.start_at, c.reschedule_id) for c in live} == {(NEW, None)} and len(live) == 2
    assert not busy.busy_intervals([world.doctors[0]], START, START + hours(1))[world.doctors[0]]
    _book_other(world, users, START)  # the old time is free for others


def test_expired_checkout_frees_the_time_and_a_late_fee_goes_to_the_wallet(
    world, users, gateway, clock
):
    patient, item = booked(world, users, gateway)
    clock.move_to(START - hours(60))
    result = _pay_online(patient, item)
    order_id = result.reschedule.razorpay_order_id
    clock.move_to(result.reschedule.expires_at + hours(0, 1))
    # The sweep has not run yet: the stale hold gives way to a new booking.
    _book_other(world, users, NEW)
    db.session.expire_all()
    row = db.session.get(Reschedule, result.reschedule.id)
    assert (row.status, row.failure_reason) == ("EXPIRED", holds.MSG_HOLD_EXPIRED)
    done = reschedule_payment.complete_callback(gateway.pay(order_id))
    gateway.deliver()
    assert done.status == "EXPIRED"
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item.id).start_at == START
    assert balance(chart.patient_wallet(patient.id)) == fee(1_000)[3]


def test_expiry_sweep_releases_the_hold(world, users, gateway, clock):
    patient, item = booked(world, users, gateway)
    clock.move_to(START - hours(60))
    result = _pay_online(patient, item)
    clock.move_to(result.reschedule.expires_at)
    assert reschedule_payment.expire_reschedules() == 1
    held = db.session.scalars(
        sa.select(SlotClaim).where(SlotClaim.reschedule_id == result.reschedule.id)
    ).all()
    assert held and not any(c.live for c in held)
    _book_other(world, users, NEW)


def _paid_with_return_and_webhooks_lost(gateway, resched):
    gateway.sandbox.set_faults(drop_events="payment.authorized,payment.captured,order.paid")
    gateway.pay(resched.razorpay_order_id)  # the tab closed: no signed return
    gateway.deliver()
    gateway.sandbox.set_faults(drop_events="")


def test_expiry_sweep_applies_a_fee_the_gateway_captured(world, users, gateway, clock):
    # The visits' sweep asks the gateway before expiring (seed 19); so does this one, or
    # the fee would stay at Razorpay with nothing moved and nothing in the wallet.
    patient, item = booked(world, users, gateway)
    clock.move_to(START - hours(60))
    resched = _pay_online(patient, item).reschedule
    _paid_with_return_and_webhooks_lost(gateway, resched)
    clock.move_to(resched.expires_at + hours(0, 1))
    assert reschedule_payment.expire_reschedules() == 0
    db.session.expire_all()
    assert db.session.get(Reschedule, resched.id).status == "DONE"
    assert db.session.get(IndividualBooking, item.id).start_at == NEW
    assert balance(chart.GATEWAY_CLEARING) == item.paid_amount + fee(1_000)[3]
    assert balance(chart.patient_wallet(patient.id)) == 0


def test_expiry_sweep_expires_a_request_whose_fee_was_captured_for_the_wrong_amount(
    world, users, gateway, clock, ledger_stays_sound
):
    """The capture the sweep finds pays for nothing (the wallet, a ``FeeCapture`` of its
    own); the request is read again under its lock, still unpaid, and expires."""
    patient, item = booked(world, users, gateway)
    clock.move_to(START - hours(60))
    resched = _pay_online(patient, item).reschedule
    _paid_with_return_and_webhooks_lost(gateway, resched)
    [wrong] = [
        p
        for p in gateway.sandbox.store.payments.values()
        if p["order_id"] == (resched.razorpay_order_id)
    ]
    wrong["amount"] = 100  # the gateway's record: ₹1
    clock.move_to(resched.expires_at + hours(0, 1))
    assert reschedule_payment.expire_reschedules() == 1
    db.session.expire_all()
    assert db.session.get(Reschedule, resched.id).status == "EXPIRED"
    assert db.session.scalars(sa.select(FeeCapture.amount)).all() == [100]
    assert db.session.get(IndividualBooking, item.id).start_at == START
    assert [c.start_at for c in _live_claims(item.id)] == [START] * len(_live_claims(item.id))
    assert balance(chart.patient_wallet(patient.id)) == 100
    assert reschedule_payment.expire_reschedules() == 0


def test_expiry_sweep_waits_while_the_gateway_cannot_answer(
    world, users, gateway, clock, monkeypatch
):
    from portal.gateway import GatewayUnavailable, get_payin

    patient, item = booked(world, users, gateway)
    clock.move_to(START - hours(60))
    resched = _pay_online(patient, item).reschedule
    _paid_with_return_and_webhooks_lost(gateway, resched)
    clock.move_to(resched.expires_at + hours(0, 1))

    def down(order_id):
        raise GatewayUnavailable("Razorpay unreachable")

    monkeypatch.setattr(get_payin(), "fetch_order_payments", down)
    assert reschedule_payment.expire_reschedules() == 0
    db.session.expire_all()
    assert db.session.get(Reschedule, resched.id).status == "PENDING_PAYMENT"
    assert len(_live_claims(item.id)) == 4  # its own time and the held one
    monkeypatch.undo()
    assert reschedule_payment.expire_reschedules() == 0  # the next sweep: captured, so moved
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item.id).start_at == NEW


def test_a_newer_request_replaces_the_pending_one(world, users, gateway, clock):
    patient, item = booked(world, users, gateway)
    clock.move_to(START - hours(60))
    first = _pay_online(patient, item)
    # Asking again for the same time is not blocked by its own hold.
    second = _pay_online(patient, item)
    db.session.expire_all()
    assert db.session.get(Reschedule, first.reschedule.id).status == "EXPIRED"
    credit_wallet(patient.id, fee(1_000)[3])
    third = quoted_move(patient, item.id, at(7, 12), pay_with="wallet")
    assert third.moved
    db.session.expire_all()
    assert db.session.get(Reschedule, second.reschedule.id).failure_reason == rs.MSG_REPLACED
    # A payment for a replaced request moves nothing and goes to the wallet.
    done = reschedule_payment.complete_callback(gateway.pay(first.reschedule.razorpay_order_id))
    gateway.deliver()
    assert done.status == "EXPIRED"
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item.id).start_at == at(7, 12)
    assert balance(chart.patient_wallet(patient.id)) == fee(1_000)[3]
    _book_other(world, users, NEW)  # no hold left behind


def test_fee_taken_at_the_desk_by_an_admin(world, users, gateway, clock):
    patient, item = booked(world, users, gateway)
    clock.move_to(START - hours(60))
    with pytest.raises(BookingError) as err:
        quoted_move(patient, item.id, NEW, pay_with="desk", receipt_no="R-1")
    assert (err.value.field, err.value.message) == ("pay_with", rs.MSG_DESK_ADMIN)
    admin = users(world.admin)
    with pytest.raises(BookingError) as err:
        quoted_move(admin, item.id, NEW, pay_with="desk", receipt_no="  ")
    assert (err.value.field, err.value.message) == ("receipt_no", rs.MSG_RECEIPT)
    with pytest.raises(BookingError) as err:
        quoted_move(admin, item.id, NEW, pay_with="gateway")
    assert (err.value.field, err.value.message) == ("pay_with", rs.MSG_ONLINE_PATIENT)
    result = quoted_move(admin, item.id, NEW, pay_with="desk", receipt_no="R-1")
    assert result.moved and result.reschedule.receipt_no == "R-1"
    assert balance(chart.CASH_DESK) == fee(1_000)[3]
    assert balance(chart.patient_wallet(patient.id)) == 0


def test_rebook_a_cancelled_item_at_todays_price(world, users, gateway, clock):

    patient, item = booked(world, users, gateway)
    with pytest.raises(BookingError):
        rs.rebook(patient, item.id, NEW)
    quoted_cancel(patient, item.master_id, [item.id])
    new = rs.rebook(patient, item.id, NEW)
    assert new.master_id != item.master_id and new.status == "SCHEDULED"
    assert new.start_at == NEW and new.total == 52_950
    with pytest.raises(rs.NotFound):
        rs.rebook(users(world.patients[1]), item.id, at(7, 12))


def test_free_times_never_offer_the_bookings_own_time(world, users, gateway, clock):
    from datetime import date

    patient, item = booked(world, users, gateway)
    slots = rs.free_slots(item, date(2026, 6, 5), days=1, limit=50)
    assert slots and START not in slots
    assert START + hours(0, 30) in slots  # its neighbour is offered


def _paid_online_move(patient, item, gateway):
    """Move the booking to NEW 60 h ahead of START (a fee), paid online; the DONE row."""
    done = reschedule_payment.complete_callback(
        gateway.pay(_pay_online(patient, item).reschedule.razorpay_order_id)
    )
    gateway.deliver()
    assert done.status == "DONE"
    return done


def _live_claims(item_id):
    return db.session.scalars(
        sa.select(SlotClaim).where(SlotClaim.booking_id == item_id, SlotClaim.live.is_(True))
    ).all()


def test_a_paid_move_keeps_its_claims_when_the_patient_books_alongside(
    world, users, gateway, clock
):
    """After the move the claims are the booking's: nothing may take them for a stale
    hold (the same patient booking another doctor at that time is refused)."""
    patient, item = booked(world, users, gateway)
    clock.move_to(START - hours(60))
    done = _paid_online_move(patient, item, gateway)
    clock.move_to(done.expires_at + hours(1))  # long after the checkout's own expiry
    with pytest.raises(SlotUnavailable):
        visits.add_item(
            patient,
            patient_id=patient.id,
            service_id=world.consult,
            provider_ids=[world.doctors[1]],
            clinic_id=world.clinic,
            start_at=NEW,
        )
    db.session.expire_all()
    assert len(_live_claims(item.id)) == 2
    assert reschedule_payment.expire_reschedules() == 0


def test_a_second_pending_move_that_expires_leaves_the_booking_claimed(
    world, users, gateway, clock, quarter_hours
):
    patient, item = booked(world, users, gateway)
    clock.move_to(START - hours(60))
    _paid_online_move(patient, item, gateway)
    clock.move_to(NEW - hours(60))  # a fee again, so the second move waits for its payment
    second = _pay_online(patient, item, at(7, 11, 15)).reschedule  # overlaps its own time
    assert second.status == "PENDING_PAYMENT"
    clock.move_to(second.expires_at)
    assert reschedule_payment.expire_reschedules() == 1
    db.session.expire_all()
    assert {c.start_at for c in _live_claims(item.id)} == {NEW}
    with pytest.raises(SlotUnavailable):
        _book_other(world, users, NEW)


def _lapsed_peel(patient, world):
    """A 60-minute peel held for Wednesday 10:00 whose hold lapsed (EXPIRED)."""
    held = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.peel,
        provider_ids=[world.derm],
        clinic_id=world.clinic,
        start_at=at(2, 10),
    )
    with unit_of_work():
        lifecycle.expire(lifecycle.lock_visit(held.master_id))
    db.session.expire_all()
    item = db.session.get(IndividualBooking, held.id)
    assert item.status == "EXPIRED"
    return item


def test_the_rebook_picker_keeps_busy_a_time_another_booking_took(world, users, clock):
    """An expired booking's old time belongs to nobody's move: when another booking has
    it now, the times overlapping that one are not offered (a 60-minute service on the
    30-minute grid: 09:30 and 10:30), and rebooking there is refused (review finding)."""
    first, second = users(world.patients[0]), users(world.patients[1])
    item = _lapsed_peel(first, world)
    visits.add_item(
        second,
        patient_id=second.id,
        service_id=world.peel,
        provider_ids=[world.derm],
        clinic_id=world.clinic,
        start_at=at(2, 10),
    )
    shown = rs.free_slots(item, at(2, 10).date(), days=1, limit=50)
    assert not {at(2, 9, 30), at(2, 10), at(2, 10, 30)} & set(shown)
    assert at(2, 11) in shown
    with pytest.raises(SlotUnavailable):
        rs.rebook(first, item.id, at(2, 9, 30))


def test_the_rebook_picker_offers_an_expired_bookings_own_time_when_free(world, users, clock):
    """The old time of a booking that lapsed is no time it holds: free, it is offered,
    and rebooking there works (re-review finding)."""
    first = users(world.patients[0])
    item = _lapsed_peel(first, world)
    assert at(2, 10) in rs.free_slots(item, at(2, 10).date(), days=1, limit=50)
    assert rs.rebook(first, item.id, at(2, 10)).start_at == at(2, 10)


def test_a_move_keeps_the_bookings_own_length_after_the_service_was_lengthened(
    world, users, gateway, clock
):
    """Paid as a 30-minute consultation; the clinic later makes new consultations 60
    minutes. The move keeps what was sold: 17:30 (ending at closing time) is a valid new
    start, offered by the picker too, and the booking stays 30 minutes."""
    from datetime import timedelta

    from portal.catalog.models import Service

    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
    item = visit.items[0]
    db.session.get(Service, world.consult).duration_minutes = 60
    db.session.commit()
    assert at(7, 17, 30) in rs.free_slots(item, at(7, 12).date(), days=1, limit=50)
    result = quoted_move(patient, item.id, at(7, 17, 30))  # > 72 h ahead: no fee
    assert result.moved
    item = db.session.get(IndividualBooking, item.id)
    assert (item.start_at, item.end_at) == (at(7, 17, 30), at(7, 18))
    assert item.end_at - item.start_at == timedelta(minutes=30)
