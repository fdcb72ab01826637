"""What goes to Razorpay is nothing or at least ₹1, its smallest order: a wallet or a
coupon that would leave less pays, or takes, that much less (``domain.pricing``'s
``wallet_part`` and ``online_minimum_coupon``). Before: 50 paise left went to Razorpay,
which refused it, and the patient read "Payments are unavailable right now", for ever
(review finding)."""

from portal.booking import checkout, coupons, lookup, prices, visits
from portal.booking.models import CouponRedemption
from portal.extensions import db
from tests.booking.factories import at, credit_wallet, quoted_checkout
from tests.refunds.helpers import book_and_pay

CB = "http://portal.test/cb"
CONSULT_TOTAL = 52_950  # the world's consultation: ₹500 + 5% + GST on it


def _hold(world, patient):
    return visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    ).master_id


def test_a_wallet_short_of_the_whole_by_under_a_rupee_leaves_a_rupee_online(world, users, gateway):
    patient = users(world.patients[0])
    credit_wallet(patient.id, 52_900)
    visit_id = _hold(world, patient)
    shown = prices.quote(lookup.get_visit(visit_id), 52_900)
    assert (shown.subtotal, shown.wallet_used, shown.amount_due) == (CONSULT_TOTAL, 52_850, 100)
    assert shown.online_minimum
    result = quoted_checkout(patient, visit_id, 52_900, callback_url=CB)
    assert result.payment.amount == 100
    again = quoted_checkout(patient, visit_id, 52_900, callback_url=CB)  # a retry
    assert again.payment.id == result.payment.id  # the same order, not a new one
    checkout.complete_checkout_callback(gateway.pay(result.payment.razorpay_order_id))
    gateway.deliver()
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert visit.status == "CONFIRMED" and visit.wallet_applied == 52_850
    assert prices.wallet_balance(patient.id) == 50


def test_a_coupon_leaving_under_a_rupee_takes_that_much_less(world, users, gateway):
    admin, patient = users(world.admin), users(world.patients[0])
    coupons.create_coupon(admin, code="FLAT529", kind="FLAT", value=52_900)
    visit = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], at(1, 10))], coupon="FLAT529"
    )
    [item] = visit.items
    assert (visit.discount, item.discount_share, item.gateway_paid) == (52_850, 52_850, 100)
    assert db.session.query(CouponRedemption).one().discount == 52_850


def test_a_coupon_leaving_under_a_rupee_that_the_wallet_covers_is_whole(world, users, gateway):
    admin, patient = users(world.admin), users(world.patients[0])
    credit_wallet(patient.id, 50)
    coupons.create_coupon(admin, code="FLAT529", kind="FLAT", value=52_900)
    visit = book_and_pay(
        world,
        patient,
        gateway,
        [(world.consult, [world.doctors[0]], at(1, 10))],
        coupon="FLAT529",
        wallet=50,
    )
    assert (visit.discount, visit.wallet_applied) == (52_900, 50)


def test_a_coupon_cut_for_the_minimum_is_whole_again_when_the_wallet_covers_the_rest(
    world, users, gateway
):
    """A ₹529 coupon cut to leave a ₹1 order; then 60 paise of the wallet asked for: a
    fresh price keeps the whole coupon and takes 50 paise from the wallet. The checkout
    called it the same request and sent the patient back to the ₹1 order (a re-review)."""
    admin, patient = users(world.admin), users(world.patients[0])
    coupons.create_coupon(admin, code="FLAT529", kind="FLAT", value=52_900)
    credit_wallet(patient.id, 60)
    visit_id = _hold(world, patient)
    visits.apply_coupon(patient, visit_id, "FLAT529")
    assert quoted_checkout(patient, visit_id, 0, callback_url=CB).payment.amount == 100
    result = quoted_checkout(patient, visit_id, 60, callback_url=CB)
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert result.redirect_url is None and visit.status == "CONFIRMED"
    assert (visit.discount, visit.wallet_applied) == (52_900, 50)
