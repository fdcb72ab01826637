"""A payment link sent with a coupon's price, the coupon lapsing while it is open
(deactivated, expired, used up): the link is an offer made, kept until it ends
(docs/booking.md "Prices, coupons, wallet"). Paid, it confirms the visit at that price.
Once it has expired, its renewal is a new link at the price without the coupon (the
coupon detached, as the patient's checkout does), not the visit lapsing; and a capture of
the old link arriving after that confirms nothing twice: it goes to the wallet, flagged."""

from datetime import timedelta

import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.booking import coupons, links, lookup, payment_events, visits
from portal.booking.models import ATTENTION_LATE_PAYMENT, Coupon, CouponRedemption
from portal.booking.prices import wallet_balance
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.payments.models import Payment
from tests.booking.factories import at


def _linked(world, users, start):
    """A desk visit (₹529.50) with SAVE10 (10 %) and a link for ₹476.55 sent; then the
    coupon deactivated by an admin."""
    admin, patient = users(world.admin), users(world.patients[0])
    db.session.add(Coupon(code="SAVE10", kind="PERCENT", value=1_000))
    db.session.commit()
    visit_id = visits.add_item(
        admin, patient_id=patient.id, service_id=world.consult,
        provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=start,
    ).master_id  # fmt: skip
    visits.apply_coupon(patient, visit_id, "SAVE10")
    link = links.create_payment_link(admin, visit_id)
    assert link.amount == 47_655
    coupon_id = coupons.find("SAVE10").id
    coupons.update_coupon(users(world.admin), coupon_id, active=False)
    return visit_id, link.id, coupon_id


def _uses(coupon_id):
    db.session.expire_all()
    redemptions = db.session.scalars(
        sa.select(CouponRedemption.confirmed).where(CouponRedemption.coupon_id == coupon_id)
    ).all()
    return db.session.get(Coupon, coupon_id).used_count, redemptions


def test_the_link_paid_after_the_coupon_lapsed_confirms_at_its_own_price(world, users, gateway):
    visit_id, link_id, coupon_id = _linked(world, users, at(2, 10))
    gateway.pay_link(db.session.get(Payment, link_id).link_url)
    gateway.deliver()
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert visit.status == "CONFIRMED" and visit.attention is None
    assert (visit.coupon_id, visit.discount) == (coupon_id, 5_295)
    assert balance(chart.GATEWAY_CLEARING) == 47_655
    assert _uses(coupon_id) == (1, [True])  # the use the link took while it was good


def test_the_expired_link_is_renewed_without_the_lapsed_coupon(world, users, gateway, clock):
    """Before: the renewal kept the lapsed coupon (its use still held) and sent a new
    link for ₹476.55, a new offer of a discount the coupon no longer gives, renewed with
    every expiry. Now the new link is ₹529.50, the coupon has left the visit, audited."""
    visit_id, first_id, coupon_id = _linked(world, users, at(3, 10))
    clock.shift(timedelta(hours=24, seconds=5))
    assert links.expire_payment_links() == 1
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert visit.status == "PENDING_PAYMENT", visit.status
    assert [(p.kind, p.amount, p.status) for p in visit.payments] == [
        ("LINK", 47_655, "EXPIRED"),
        ("LINK", 52_950, "PENDING"),
    ]
    assert (visit.coupon_id, visit.discount) == (None, 0)
    assert _uses(coupon_id) == (0, [])  # the expired link's use given back, none taken
    audit = db.session.scalar(
        sa.select(AuditEntry).where(
            AuditEntry.action == "visit.coupon_lapsed", AuditEntry.object_id == str(visit_id)
        )
    )
    assert audit is not None and audit.before == {"coupon": "SAVE10", "discount": 5_295}

    # The old link's capture arriving now (Razorpay took it as the link was cancelled):
    # it pays for nothing here, so it goes to the patient's wallet and an admin looks.
    payment_events.capture(
        db.session.get(Payment, first_id), razorpay_payment_id="pay_oldlink", amount=47_655
    )
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert visit.status == "PENDING_PAYMENT" and visit.attention == ATTENTION_LATE_PAYMENT
    assert wallet_balance(visit.patient_id) == 47_655
    assert visit.pending_payment.amount == 52_950  # the new link still stands
