"""Every row of the cancellation table and every reschedule tier at its boundaries, on a
booking paid with a coupon **and** part from the wallet: the amount from the policy on the
item's paid amount (total − coupon share), the wallet part back to the wallet pro rata,
the rest once through Razorpay, the provider's penalty, the visit's status. The expected
figures are worked out here from the policy's numbers, not by the code under test."""

import pytest

from portal.booking import coupons
from portal.booking import reschedule as rs
from portal.domain.cancellation import (
    MSG_PROVIDER_AFTER_START,
    MSG_TEAM_ADMIN_ONLY,
)
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.refunds import lookup as refunds_lookup
from portal.refunds import money as refunds_money
from portal.refunds.common import CancellationError
from portal.refunds.models import Cancellation, RefundApproval
from tests.booking.factories import at, credit_wallet
from tests.refunds.helpers import (
    PATIENT_TOO_LATE,
    RESCHEDULE_TOO_LATE,
    book_and_pay,
    hours,
    quoted_admin_cancel,
    quoted_cancel,
    quoted_move,
    quoted_provider_cancel,
    settle_refunds,
)

START = at(4, 10)  # Friday 5 June 2026, 10:00 IST
WALLET = 50_000


def half_up(amount, bps):
    return (amount * bps * 2 + 10_000) // 20_000


def full(paid):
    return paid


def patient_partial(paid):  # 75 % − ₹100
    return max(half_up(paid, 7_500) - 10_000, 0)


def admin_late(paid):  # 50 % − ₹250
    return max(half_up(paid, 5_000) - 25_000, 0)


def split(refund, wallet_paid, paid):
    """Pro rata to how the item was paid, largest remainder, a tie paisa to the wallet."""
    gateway_paid = paid - wallet_paid
    w, rw = divmod(refund * wallet_paid, paid)
    g, rg = divmod(refund * gateway_paid, paid)
    if w + g < refund:
        if rw >= rg:
            w += 1
        else:
            g += 1
    return w, g


def peel(world, users, gateway):
    """A ₹1,200 taxable peel, 10 % coupon, ₹500 from the wallet, the rest online."""
    patient, admin = users(world.patients[0]), users(world.admin)
    coupons.create_coupon(admin, code="SAVE10", kind="PERCENT", value=1_000)
    credit_wallet(patient.id, WALLET)
    visit = book_and_pay(
        world, patient, gateway, [(world.peel, [world.derm], START)], coupon="SAVE10", wallet=WALLET
    )
    item = visit.items[0]
    assert item.discount_share == half_up(item.total, 1_000)
    assert item.paid_amount == item.total - item.discount_share == 133_812
    assert (item.wallet_paid, item.gateway_paid) == (WALLET, 133_812 - WALLET)
    return patient, visit, item


def _provider_user(users, provider_id):
    from portal.catalog.models import Provider

    return users(db.session.get(Provider, provider_id).user_id)


ROWS = [
    # who, notice before the start, expected refund (of paid) or refusal, rule
    ("patient", hours(48, 1), full, "patient_full"),
    ("patient", hours(48), full, "patient_full"),
    ("patient", hours(47, 59), patient_partial, "patient_partial"),
    ("patient", hours(24, 1), patient_partial, "patient_partial"),
    ("patient", hours(24), PATIENT_TOO_LATE, None),
    ("patient", hours(23, 59), PATIENT_TOO_LATE, None),
    ("admin", hours(48, 1), full, "admin_patient_tier"),
    ("admin", hours(24, 1), patient_partial, "admin_patient_tier"),
    ("admin", hours(24), admin_late, "admin_late"),
    ("admin", hours(23, 59), admin_late, "admin_late"),
    ("admin", -hours(1), admin_late, "admin_late"),
    ("clinic", hours(72), full, "clinic"),
    ("clinic", hours(0, 1), full, "clinic"),
    ("clinic", -hours(1), full, "clinic"),
    ("provider", hours(48), full, "provider"),
    ("provider", hours(0, 1), full, "provider"),
    ("provider", hours(0), MSG_PROVIDER_AFTER_START, None),
]


@pytest.mark.parametrize("who, before, expected, rule", ROWS, ids=[f"{r[0]}-{r[1]}" for r in ROWS])
def test_cancellation_table_with_coupon_and_partial_wallet(
    world, users, gateway, clock, who, before, expected, rule
):
    patient, visit, item = peel(world, users, gateway)
    clock.move_to(START - before)
    admin = users(world.admin)

    def cancel():
        if who == "patient":
            return quoted_cancel(patient, visit.id, [item.id])[0]
        if who == "provider":
            return quoted_provider_cancel(
                _provider_user(users, world.derm), item.id, "Called away to the hospital"
            )
        return quoted_admin_cancel(
            admin,
            item.id,
            "Patient phoned the desk",
            mode="patient" if who == "admin" else "clinic",
        )

    if isinstance(expected, str):
        with pytest.raises(CancellationError) as err:
            cancel()
        assert err.value.message == expected
        db.session.expire_all()
        assert db.session.get(type(item), item.id).status == "CONFIRMED"
        assert not db.session.query(Cancellation).count()
        return

    paid = item.paid_amount
    refund = expected(paid)
    to_wallet, to_gateway = split(refund, item.wallet_paid, paid)
    done = cancel()
    assert (done.refund, done.rule, done.paid) == (refund, rule, paid)
    db.session.expire_all()
    item = db.session.get(type(item), item.id)
    assert item.status == "CANCELLED" and item.refunded_amount == refund
    assert item.visit.status == "CANCELLED"
    rows = refunds_lookup.refunds_for_visit(visit.id)
    assert sorted((r.destination, r.amount) for r in rows) == sorted(
        [(d, a) for d, a in (("WALLET", to_wallet), ("GATEWAY", to_gateway)) if a]
    )
    assert balance(chart.patient_wallet(patient.id)) == to_wallet
    settle_refunds(gateway)
    at_sandbox = [r["amount"] for r in gateway.sandbox.store.refunds.values()]
    assert at_sandbox == ([to_gateway] if to_gateway else [])
    assert balance(chart.REFUNDS_PAYABLE) == 0
    assert balance(chart.provider_payable(world.derm)) == (-25_000 if who == "provider" else 0)
    kept = paid - refund
    assert (
        balance(chart.CANCELLATION_REVENUE) + refunds_money.gst_kept(item.gst, paid, kept) == kept
    )


@pytest.mark.parametrize("over", [0, 1])
def test_override_at_and_just_above_the_calculated_amount(world, users, gateway, clock, over):
    """At the boundary the override applies at once; a paisa above waits for a second
    admin, the calculated part refunded now."""
    patient, visit, item = peel(world, users, gateway)
    clock.move_to(START - hours(23, 59))
    calculated = admin_late(item.paid_amount)
    done = quoted_admin_cancel(
        users(world.admin),
        item.id,
        "Doctor ran two hours late",
        mode="patient",
        override=calculated + over,
    )
    assert done.refund == calculated
    pending = db.session.query(RefundApproval).all()
    assert [(a.calculated, a.extra) for a in pending] == ([(calculated, 1)] if over else [])
    assert done.rule == ("override_needs_approval" if over else "override")


def test_team_appointment_at_every_boundary(world, users, gateway, clock):
    """A team appointment is never the patient's to cancel online, at any notice."""
    patient = users(world.patients[0])
    visit = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0], world.doctors[1]], START)]
    )
    for before in (hours(98), hours(48), hours(47, 59), hours(24, 1)):
        clock.move_to(START - before)
        with pytest.raises(CancellationError) as err:
            quoted_cancel(patient, visit.id, [visit.items[0].id])
        assert err.value.message == MSG_TEAM_ADMIN_ONLY


# --- reschedule tiers on a discounted, part-wallet booking, and for a team -----------------

TIERS = [  # notice, penalty bps (single), penalty bps (team: +5 points)
    (hours(72, 1), 0, 500),
    (hours(72), 1_000, 1_500),
    (hours(71, 59), 1_000, 1_500),
    (hours(48, 1), 1_000, 1_500),
    (hours(48), 2_000, 2_500),
    (hours(47, 59), 2_000, 2_500),
    (hours(24, 1), 2_000, 2_500),
    (hours(24), None, None),
    (hours(23, 59), None, None),
]


def fee(fee_paise, bps):
    penalty = half_up(fee_paise, bps)
    platform = half_up(penalty, 500)
    gst = half_up(penalty + platform, 1_800)
    return penalty, penalty + platform + gst


@pytest.mark.parametrize("before, bps, team_bps", TIERS, ids=[str(t[0]) for t in TIERS])
def test_reschedule_tiers_on_the_list_fee_not_the_discounted_price(
    world, users, gateway, clock, before, bps, team_bps
):
    patient, visit, item = peel(world, users, gateway)
    clock.move_to(START - before)
    new = at(7, 11)
    if bps is None:
        with pytest.raises(rs.BookingError) as err:
            quoted_move(patient, item.id, new, pay_with="wallet")
        assert err.value.message == RESCHEDULE_TOO_LATE
        return
    penalty, total = fee(120_000, bps)  # the service's fee F, whatever the coupon took
    _, q = rs.quote(patient, item.id)
    assert (q.penalty_bps, q.penalty, q.total) == (bps, penalty, total)
    if total:
        credit_wallet(patient.id, total)
    result = rs.reschedule(
        patient,
        item.id,
        new,
        pay_with="wallet" if total else None,
        expected_fee=q.total,
        shown_start=item.start_at,
    )
    assert result.moved and result.reschedule.total == total
    assert balance(chart.patient_wallet(patient.id)) == 0
    commission = half_up(penalty, 500)
    assert balance(chart.provider_payable(world.derm)) == penalty - commission


@pytest.mark.parametrize("before, bps, team_bps", TIERS, ids=[str(t[0]) for t in TIERS])
def test_reschedule_tiers_for_a_team(world, users, gateway, clock, before, bps, team_bps):
    patient = users(world.patients[0])
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0], world.doctors[1]], START)]
    ).items[0]
    clock.move_to(START - before)
    _, q = rs.quote(patient, item.id)
    if team_bps is None:
        assert (q.allowed, q.message) == (False, RESCHEDULE_TOO_LATE)
        return
    assert (q.allowed, q.penalty_bps, q.total) == (True, team_bps, fee(50_000, team_bps)[1])
