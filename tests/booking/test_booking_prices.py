"""Prices per item, coupons spread pro rata, wallet split and reservation, receipts."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.booking import checkout, coupons, links, lookup, prices, receipts, visits
from portal.booking.errors import BookingError
from portal.booking.models import Coupon, CouponRedemption
from portal.booking.postings import WALLET_RESERVED
from portal.booking.tasks import expire_holds
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from tests.booking.factories import at, credit_wallet, quoted_checkout
from tests.payments.test_payments_checkout import hold


def two_item_visit(world, patient):
    a = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.lab,
        provider_ids=[world.lab_provider],
        clinic_id=world.clinic,
        start_at=at(1, 11),
        visit_id=a.master_id,
    )
    visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.follow,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 12),
        visit_id=a.master_id,
    )
    return lookup.get_visit(a.master_id)


def coupon(admin, **kw):
    data = dict(code="SAVE10", kind="PERCENT", value=1_000)
    data.update(kw)
    return coupons.create_coupon(admin, **data)


def test_item_price_breakup(world, users):
    patient = users(world.patients[0])
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    # F 500, P 5% = 25, GST 18% of P only (care is exempt) = 4.50
    assert (item.fee, item.platform_fee, item.gst, item.total) == (50_000, 2_500, 450, 52_950)
    assert (item.taxable, item.fee_taxed) == (2_500, False)
    peel = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.peel,
        provider_ids=[world.derm],
        clinic_id=world.clinic,
        start_at=at(2, 10),
    )
    # A taxable (cosmetic) service: GST on F + P.
    assert (peel.platform_fee, peel.gst, peel.total) == (6_000, 22_680, 148_680)


def test_coupon_spread_pro_rata_with_partial_wallet(world, users, gateway):
    patient, admin = users(world.patients[0]), users(world.admin)
    coupon(admin, code="save10")
    visit = two_item_visit(world, patient)
    totals = [i.total for i in visit.items]
    # lab 333.33 → P 16.67 (half-up), GST 3.00; follow-up 250.50 → P 12.53, GST 2.26
    assert totals == [52_950, 35_300, 26_529]
    visit = visits.apply_coupon(patient, visit.id, " Save10 ")
    q = prices.quote(visit)
    assert q.subtotal == 114_779 and q.discount == 11_478  # 10% of 1147.79, half-up
    assert [line.discount_share for line in q.lines] == [5_295, 3_530, 2_653]
    assert sum(line.discount_share for line in q.lines) == q.discount
    assert [line.paid_amount for line in q.lines] == [47_655, 31_770, 23_876]

    credit_wallet(patient.id, 30_000)
    q = prices.quote(visit, wallet_paise=50_000)  # capped at the balance
    assert q.wallet_used == 30_000 and q.amount_due == 103_301 - 30_000
    assert sum(line.wallet_paid for line in q.lines) == 30_000
    assert [line.wallet_paid for line in q.lines] == [13_840, 9_226, 6_934]

    result = quoted_checkout(patient, visit.id, 50_000, callback_url="http://portal.test/cb")
    assert result.payment.amount == 73_301 and result.redirect_url
    assert prices.wallet_balance(patient.id) == 0 and balance(WALLET_RESERVED) == 30_000
    assert gateway.sandbox.store.orders[result.payment.razorpay_order_id]["amount"] == 73_301
    visit = checkout.complete_checkout_callback(gateway.pay(result.payment.razorpay_order_id)).visit
    assert visit.status == "CONFIRMED"
    for item, w in zip(visit.items, [13_840, 9_226, 6_934]):
        assert (item.wallet_paid, item.paid_amount - item.wallet_paid) == (w, item.gateway_paid)
    assert balance(WALLET_RESERVED) == 0
    assert balance(chart.UNEARNED_FEES) == 50_000 + 33_333 + 25_050
    assert balance(chart.PLATFORM_REVENUE) == 2_500 + 1_667 + 1_253
    assert balance(chart.GST_PAYABLE) == 450 + 300 + 226 + 0  # per item, rounded once each
    assert balance(chart.DISCOUNTS) == 11_478
    assert balance(chart.GATEWAY_CLEARING) == 73_301
    assert db.session.get(Coupon, visit.coupon_id).used_count == 1


def test_fully_paid_by_wallet_confirms_at_once(world, users):
    patient = users(world.patients[0])
    credit_wallet(patient.id, 100_000)
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    result = quoted_checkout(patient, item.master_id, 100_000, "http://portal.test/cb")
    assert result.redirect_url is None and result.payment.kind == "WALLET"
    visit = lookup.get_visit(item.master_id)
    assert visit.status == "CONFIRMED" and visit.invoice_no == "CP/26-27/000001"
    assert prices.wallet_balance(patient.id) == 100_000 - 52_950
    assert result.payment.status == "SUCCESSFUL"


def test_wallet_reservation_cannot_be_spent_twice(world, users, gateway):
    patient = users(world.patients[0])
    credit_wallet(patient.id, 40_000)
    first = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    second = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[1]],
        clinic_id=world.clinic,
        start_at=at(1, 12),
    )
    one = quoted_checkout(patient, first.master_id, 40_000, "http://portal.test/cb")
    assert one.payment.amount == 12_950
    # The balance is reserved: the second checkout finds nothing left to use.
    assert prices.quote(lookup.get_visit(second.master_id), 40_000).wallet_used == 0
    two = quoted_checkout(patient, second.master_id, 40_000, "http://portal.test/cb")
    assert two.payment.amount == 52_950
    assert prices.wallet_balance(patient.id) == 0 and balance(WALLET_RESERVED) == 40_000


def test_expiry_releases_wallet_and_coupon(world, users, gateway, clock):
    patient, admin = users(world.patients[0]), users(world.admin)
    coupon(admin, code="ONCE", max_uses=1)
    credit_wallet(patient.id, 10_000)
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    visits.apply_coupon(patient, item.master_id, "once")
    result = quoted_checkout(patient, item.master_id, 10_000, "http://portal.test/cb")
    assert db.session.get(Coupon, 1).used_count == 1
    other = users(world.patients[1])
    item2 = visits.add_item(
        other,
        patient_id=other.id,
        service_id=world.consult,
        provider_ids=[world.doctors[1]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    with pytest.raises(BookingError, match="usage limit"):
        visits.apply_coupon(other, item2.master_id, "ONCE")
    clock.shift(timedelta(minutes=31))  # the order's lifetime (30 min) has passed
    assert expire_holds() == 2  # both holds
    db.session.expire_all()
    visit = lookup.get_visit(item.master_id)
    assert visit.status == "EXPIRED" and [i.status for i in visit.items] == ["EXPIRED"]
    assert {p.kind: p.status for p in visit.payments} == {"WALLET": "EXPIRED", "ORDER": "EXPIRED"}
    assert not any(c.live for c in visit.items[0].claims)
    assert prices.wallet_balance(patient.id) == 10_000 and balance(WALLET_RESERVED) == 0
    assert db.session.get(Coupon, 1).used_count == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CouponRedemption)) == 0
    assert result.payment.id


def test_a_lapsed_coupon_is_left_out_of_a_new_checkout_and_its_use_given_back(
    world, users, gateway
):
    """ONCE (one use) priced into a pending order holds the use: judged as valid for this
    visit (its own use is not counted against it). Deactivated, paying that order again
    keeps its price (the use was taken while the coupon was good); a new checkout (another
    wallet part) is priced without it, as ``pay_quote`` states, the coupon leaves the
    visit and its use is given back, not consumed."""
    patient, admin = users(world.patients[0]), users(world.admin)
    once = coupon(admin, code="ONCE", max_uses=1)
    credit_wallet(patient.id, 10_000)
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    visit_id = item.master_id
    visits.apply_coupon(patient, visit_id, "ONCE")
    first = checkout.checkout(patient, visit_id, 0, "http://portal.test/cb", shown=(0, 47_655))
    visit = lookup.get_visit(visit_id)
    assert db.session.get(Coupon, once.id).used_count == 1
    assert coupons.lapsed(visit) is None  # the use it holds is its own
    coupons.update_coupon(admin, once.id, active=False)
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    again = prices.pay_quote(visit, 0)
    assert (again.discount, again.amount_due, again.coupon_lapsed) == (5_295, 47_655, None)
    retry = checkout.checkout(patient, visit_id, 0, "http://portal.test/cb", shown=(0, 47_655))
    assert retry.payment.id == first.payment.id

    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    new = prices.pay_quote(visit, 10_000)
    assert (new.discount, new.wallet_used, new.amount_due) == (0, 10_000, 42_950)
    assert new.coupon_lapsed == coupons.MSG_INACTIVE
    assert visit.coupon_id == once.id  # stating it wrote nothing
    result = checkout.checkout(
        patient, visit_id, 10_000, "http://portal.test/cb", shown=(10_000, 42_950)
    )
    assert result.payment.amount == 42_950 and result.payment.id != first.payment.id
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert (visit.coupon_id, visit.discount, visit.wallet_applied) == (None, 0, 10_000)
    assert db.session.get(Coupon, once.id).used_count == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CouponRedemption)) == 0


def test_a_new_payment_link_still_refuses_a_lapsed_coupon_and_the_desk_takes_the_whole_total(
    world, users
):
    """The admin's new payment link is not the patient's page: a coupon no longer valid
    is refused there with its reason, and the admin removes it. The desk payment states
    and records the whole total as the patient's page does (``prices.desk_quote``), the
    coupon detached (docs/booking.md "Prices, coupons, wallet")."""
    patient, admin = users(world.patients[0]), users(world.admin)
    save = coupon(admin)
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    visits.apply_coupon(patient, item.master_id, "SAVE10")
    coupons.update_coupon(admin, save.id, active=False)
    with pytest.raises(BookingError, match="no longer active"):
        links.create_payment_link(admin, item.master_id)
    visit = lookup.get_visit(item.master_id)
    assert visit.coupon_id == save.id
    whole = prices.desk_quote(visit)
    assert (whole.discount, whole.amount_due) == (0, whole.subtotal)
    payment = checkout.record_desk_payment(
        admin, item.master_id, "R-1", confirmed_amount=whole.amount_due
    )
    assert payment.amount == whole.amount_due
    assert lookup.get_visit(item.master_id).coupon_id is None


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"active": False}, "no longer active"),
        ({"valid_until_days": -1}, "has expired"),
        ({"valid_from_days": 2}, "not valid yet"),
    ],
)
def test_coupon_validity_messages(world, users, changes, message):
    from portal.db import utcnow

    patient, admin = users(world.patients[0]), users(world.admin)
    kw = {}
    if "active" in changes:
        kw["active"] = False
    if "valid_until_days" in changes:
        kw.update(
            valid_from=utcnow() - timedelta(days=5),
            valid_until=utcnow() + timedelta(days=changes["valid_until_days"]),
        )
    if "valid_from_days" in changes:
        kw["valid_from"] = utcnow() + timedelta(days=changes["valid_from_days"])
    coupon(admin, **kw)
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    with pytest.raises(BookingError, match=message) as e:
        visits.apply_coupon(patient, item.master_id, "SAVE10")
    assert e.value.field == "coupon"
    with pytest.raises(BookingError, match="^Enter a valid coupon code$"):
        visits.apply_coupon(patient, item.master_id, "NOPE")


def test_coupon_per_patient_limit_and_flat_cap(world, users):
    patient, admin = users(world.patients[0]), users(world.admin)
    coupon(admin, code="FLAT1000", kind="FLAT", value=100_000, max_uses_per_patient=1)
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    visit = visits.apply_coupon(patient, item.master_id, "flat1000")
    assert visit.discount == 52_950  # capped at the visit's total
    result = quoted_checkout(patient, visit.id, callback_url="http://portal.test/cb")
    assert result.redirect_url is None  # nothing left to pay: confirmed
    assert lookup.get_visit(visit.id).status == "CONFIRMED"
    assert balance(chart.DISCOUNTS) == 52_950
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(2, 10),
    )
    with pytest.raises(BookingError, match="already used this coupon"):
        visits.apply_coupon(patient, item.master_id, "FLAT1000")


def test_coupon_admin_rules(world, users):
    from portal.accounts.service import PermissionDenied, ValidationError

    admin, patient = users(world.admin), users(world.patients[0])
    with pytest.raises(PermissionDenied):
        coupon(patient)
    created = coupon(admin, code="diwali-25", value=2_500)
    assert created.code == "DIWALI-25"
    with pytest.raises(ValidationError) as e:
        coupon(admin, code="Diwali-25")
    assert "already exists" in e.value.errors["code"]
    with pytest.raises(ValidationError) as e:
        coupon(admin, code="BIG", value=10_001)
    assert "100%" in e.value.errors["value"]
    updated = coupons.update_coupon(admin, created.id, active=False)
    assert not updated.active and [c.code for c in coupons.list_coupons(active=False)] == [
        "DIWALI-25"
    ]


def test_receipt_invoice_numbers_and_lines(world, users):
    patient = users(world.patients[0])
    credit_wallet(patient.id, 1_000_000)
    numbers = []
    for hour in (10, 11):
        item = visits.add_item(
            patient,
            patient_id=patient.id,
            service_id=world.consult,
            provider_ids=[world.doctors[0]],
            clinic_id=world.clinic,
            start_at=at(1, hour),
        )
        quoted_checkout(patient, item.master_id, 1_000_000, "http://portal.test/cb")
        numbers.append(lookup.get_visit(item.master_id).invoice_no)
    assert numbers == ["CP/26-27/000001", "CP/26-27/000002"]
    receipt = receipts.receipt(lookup.get_visit(item.master_id))
    [line] = receipt.lines
    assert line.clinic_gstin == "29ABCDE1234F1Z5" and not line.care_taxed
    assert (receipt.exempt_care, receipt.taxed_value, receipt.gst) == (50_000, 2_500, 450)
    assert receipt.total_paid == 52_950 and receipt.paid_wallet == 52_950
    draft = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 12),
    )
    with pytest.raises(BookingError, match="not been paid"):
        receipts.receipt(draft.visit)


def test_payment_confirms_the_coupon_use_of_its_own_visit_only(world, users, gateway):
    patient, admin = users(world.patients[0]), users(world.admin)
    coupon(admin, code="KEEP")
    with_coupon = hold(world, patient, hour=10, doctor=0)
    without = hold(world, patient, hour=11, doctor=1)
    visits.apply_coupon(patient, with_coupon, "KEEP")
    for visit_id in (with_coupon, without):
        result = quoted_checkout(patient, visit_id, 0, "http://portal.test/cb")
        params = gateway.pay(result.payment.razorpay_order_id)
        assert checkout.complete_checkout_callback(params).visit.status == "CONFIRMED"
    db.session.expire_all()
    uses = db.session.scalars(sa.select(CouponRedemption)).all()
    # The use taken at checkout counts for good once paid; the other visit has none.
    assert [(u.visit_id, u.confirmed) for u in uses] == [(with_coupon, True)]
    assert db.session.get(Coupon, 1).used_count == 1


# --- a late payment and the coupon use its hold gave back ----------------------------------

CONSULT_LESS_10 = 52_950 - 5_295  # the consultation with SAVE10
CB = "http://portal.test/cb"


def late_paid_coupon_visit(world, users, gateway, clock, before_payment, **coupon_kw):
    """Patient 0 checks out with SAVE10, the hold expires (the use goes back to the
    coupon), ``before_payment(patient, admin)`` runs, then the order is paid late."""
    patient, admin = users(world.patients[0]), users(world.admin)
    coupon(admin, **coupon_kw)
    visit_id = hold(world, patient, hour=10, doctor=0)
    visits.apply_coupon(patient, visit_id, "save10")
    result = quoted_checkout(patient, visit_id, 0, "http://portal.test/cb")
    assert result.payment.amount == CONSULT_LESS_10
    clock.shift(timedelta(minutes=31))
    assert expire_holds() == 1
    assert db.session.get(Coupon, 1).used_count == 0
    before_payment(patient, admin)
    gateway.pay(result.payment.razorpay_order_id)
    gateway.deliver()
    db.session.expire_all()
    return patient, lookup.get_visit(visit_id)


def pay_with_coupon(world, gateway, user, hour, doctor):
    visit_id = hold(world, user, hour=hour, doctor=doctor)
    visits.apply_coupon(user, visit_id, "SAVE10")
    result = quoted_checkout(user, visit_id, 0, "http://portal.test/cb")
    params = gateway.pay(result.payment.razorpay_order_id)
    assert checkout.complete_checkout_callback(params).visit.status == "CONFIRMED"
    return visit_id


def test_late_payment_revives_a_coupon_visit_and_takes_the_use_again(world, users, gateway, clock):
    patient, visit = late_paid_coupon_visit(
        world, users, gateway, clock, lambda patient, admin: None, max_uses=1
    )
    assert visit.status == "CONFIRMED" and visit.discount == 5_295
    uses = db.session.scalars(sa.select(CouponRedemption)).all()
    assert [(u.visit_id, u.confirmed, u.discount) for u in uses] == [(visit.id, True, 5_295)]
    assert db.session.get(Coupon, 1).used_count == 1
    assert balance(chart.DISCOUNTS) == 5_295 and prices.wallet_balance(patient.id) == 0
    other = users(world.patients[1])
    with pytest.raises(BookingError, match="usage limit"):
        visits.apply_coupon(other, hold(world, other, hour=11, doctor=1), "SAVE10")


def _used_up(world, gateway, users):
    def act(patient, admin):
        pay_with_coupon(world, gateway, users(world.patients[1]), hour=11, doctor=1)

    return act, 1, {"max_uses": 1}


def _inactive(world, gateway, users):
    def act(patient, admin):
        coupons.update_coupon(admin, 1, active=False)

    return act, 0, {}


def _expired(world, gateway, users):
    from portal.db import utcnow

    def act(patient, admin):
        coupons.update_coupon(admin, 1, valid_until=utcnow() - timedelta(minutes=1))

    return act, 0, {}


def _patient_limit(world, gateway, users):
    def act(patient, admin):
        pay_with_coupon(world, gateway, patient, hour=12, doctor=1)  # another visit, paid

    return act, 1, {"max_uses_per_patient": 1}


@pytest.mark.parametrize("meanwhile", [_used_up, _inactive, _expired, _patient_limit])
def test_late_payment_whose_coupon_cannot_be_taken_again_goes_to_the_wallet(
    world, users, gateway, clock, meanwhile
):
    act, other_uses, coupon_kw = meanwhile(world, gateway, users)
    patient, visit = late_paid_coupon_visit(world, users, gateway, clock, act, **coupon_kw)
    assert visit.status == "EXPIRED" and [i.status for i in visit.items] == ["EXPIRED"]
    assert visit.attention == "LATE_PAYMENT_TO_WALLET"
    assert not any(c.live for c in visit.items[0].claims)
    # The whole late capture is the patient's, in the wallet; the coupon paid nothing.
    assert prices.wallet_balance(patient.id) == CONSULT_LESS_10
    assert db.session.get(Coupon, 1).used_count == other_uses
    uses = db.session.scalars(sa.select(CouponRedemption)).all()
    assert len(uses) == other_uses and visit.id not in [u.visit_id for u in uses]
    assert balance(chart.DISCOUNTS) == 5_295 * other_uses


def test_a_limit_found_after_the_late_take_undoes_it(world, users, gateway, clock, monkeypatch):
    """The check passed (a concurrent use committed after it was read) but the count
    after the take finds the patient's limit reached: the count goes back down."""

    def act(patient, admin):
        pay_with_coupon(world, gateway, patient, hour=12, doctor=1)
        monkeypatch.setattr(coupons, "check", lambda *a, **kw: None)

    patient, visit = late_paid_coupon_visit(
        world, users, gateway, clock, act, max_uses_per_patient=1
    )
    assert visit.status == "EXPIRED" and visit.attention == "LATE_PAYMENT_TO_WALLET"
    assert prices.wallet_balance(patient.id) == CONSULT_LESS_10
    assert db.session.get(Coupon, 1).used_count == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CouponRedemption)) == 1


def test_late_payment_gives_the_coupon_use_back_when_the_wallet_part_is_gone(
    world, users, gateway, clock
):
    """The use is taken before the wallet part: a wallet too low now puts it back."""
    patient, admin = users(world.patients[0]), users(world.admin)
    coupon(admin, max_uses=1)
    credit_wallet(patient.id, 10_000)
    visit_id = hold(world, patient, hour=10, doctor=0)
    visits.apply_coupon(patient, visit_id, "SAVE10")
    result = quoted_checkout(patient, visit_id, 10_000, "http://portal.test/cb")
    assert result.payment.amount == CONSULT_LESS_10 - 10_000
    clock.shift(timedelta(minutes=31))
    assert expire_holds() == 1
    spend = quoted_checkout(patient, hold(world, patient, hour=12, doctor=1), 10_000, CB)
    assert spend.payment.amount == 52_950 - 10_000  # the wallet is reserved elsewhere
    gateway.pay(result.payment.razorpay_order_id)
    gateway.deliver()
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert visit.status == "EXPIRED" and visit.attention == "LATE_PAYMENT_TO_WALLET"
    assert db.session.get(Coupon, 1).used_count == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CouponRedemption)) == 0
    assert prices.wallet_balance(patient.id) == CONSULT_LESS_10 - 10_000
    assert balance(WALLET_RESERVED) == 10_000


def _once_in_a_pending_order(world, users):
    """ONCE (one use) priced into the visit's pending order, which holds that use."""
    patient, admin = users(world.patients[0]), users(world.admin)
    once = coupon(admin, code="ONCE", max_uses=1)
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    visits.apply_coupon(patient, item.master_id, "ONCE")
    checkout.checkout(patient, item.master_id, 0, "http://portal.test/cb", shown=(0, 47_655))
    db.session.expire_all()
    return patient, admin, once, item.master_id


def test_the_desk_keeps_a_coupon_whose_only_use_the_pending_order_held(world, users, gateway):
    """The desk abandons the pending order, which gives ONCE's use back, then judges the
    coupon: the count read before the give-back (1 of 1) made it "used up" by another,
    and the desk, which stated ₹476.55, found ₹529.50 and refused. The coupon is good:
    ₹476.55 is recorded, its one use now this visit's for good."""
    _, admin, once, visit_id = _once_in_a_pending_order(world, users)
    assert prices.desk_quote(lookup.get_visit(visit_id)).amount_due == 47_655
    payment = checkout.record_desk_payment(admin, visit_id, "R-1", confirmed_amount=47_655)
    assert payment.amount == 47_655
    db.session.expire_all()
    assert lookup.get_visit(visit_id).coupon_id == once.id
    assert db.session.get(Coupon, once.id).used_count == 1


def test_a_restarted_checkout_keeps_a_coupon_whose_only_use_its_order_held(world, users, gateway):
    """The same at the patient's checkout asked again with another wallet part."""
    patient, _, once, visit_id = _once_in_a_pending_order(world, users)
    credit_wallet(patient.id, 10_000)
    db.session.expire_all()
    stated = prices.pay_quote(lookup.get_visit(visit_id), 10_000)
    assert (stated.discount, stated.wallet_used, stated.amount_due) == (5_295, 10_000, 37_655)
    result = checkout.checkout(
        patient, visit_id, 10_000, "http://portal.test/cb", shown=(10_000, 37_655)
    )
    assert result.payment.amount == 37_655
    db.session.expire_all()
    assert lookup.get_visit(visit_id).coupon_id == once.id
    assert db.session.get(Coupon, once.id).used_count == 1
