"""Admin payment links (smart expiry), desk payments, and the expiry sweep."""

from datetime import timedelta

import pytest

from portal import jobs
from portal.booking import checkout, links, lookup, visits
from portal.booking.errors import BookingError, PaymentError, PermissionDenied
from portal.booking.tasks import expire_holds
from portal.db import utcnow
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from tests.booking.factories import at, quoted_checkout, quoted_desk_payment


def admin_hold(world, users, start, patient=0):
    admin, patient = users(world.admin), users(world.patients[patient])
    item = visits.add_item(
        admin,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=start,
    )
    return admin, item.master_id


@pytest.mark.parametrize(
    "start, expected",
    [
        (at(3, 10), timedelta(hours=24)),  # far ahead: now + 24 h
        (at(0, 13), timedelta(hours=3)),  # 5 h ahead: start − 2 h
        (at(0, 10, 30), timedelta(minutes=30)),  # 2.5 h ahead: 30 min
    ],
)
def test_payment_link_smart_expiry(world, users, gateway, start, expected):
    admin, visit_id = admin_hold(world, users, start)
    payment = links.create_payment_link(admin, visit_id)
    assert payment.kind == "LINK" and payment.status == "PENDING"
    assert payment.expires_at - utcnow() == pytest.approx(expected, abs=timedelta(seconds=5))
    link = gateway.sandbox.store.links[payment.razorpay_link_id]
    assert link["expire_by"] == int(payment.expires_at.timestamp())
    assert payment.link_url == link["short_url"]
    visit = lookup.get_visit(visit_id)
    assert visit.hold_expires_at == payment.expires_at and visit.status == "PENDING_PAYMENT"


def test_payment_link_too_close_to_the_start(world, users, gateway, clock):
    admin, visit_id = admin_hold(world, users, at(0, 10, 20))
    clock.shift(timedelta(minutes=10))  # now 08:10: 10:20 − 2 h = 08:20, only 10 min ahead
    with pytest.raises(BookingError, match="take the payment at the desk"):
        links.create_payment_link(admin, visit_id)
    with pytest.raises(PermissionDenied):
        links.create_payment_link(users(world.patients[0]), visit_id)


def test_a_link_razorpay_refuses_as_too_soon_says_take_it_at_the_desk(world, users, gateway):
    """The portal's own rule passes (16 min ahead by its clock), but Razorpay refuses an
    ``expire_by`` under 15 minutes ahead by its own (a clock ahead, a slow request): the
    admin is told the desk is the way, not "Payments are unavailable right now", which no
    retry changes (review r4). Nothing is written."""
    admin, visit_id = admin_hold(world, users, at(0, 10, 16))  # 08:00 now: 08:16 expiry
    gateway.sandbox.advance(120)  # Razorpay's clock 2 min ahead: 14 min by its reckoning
    with pytest.raises(BookingError) as refused:
        links.create_payment_link(admin, visit_id)
    assert refused.value.message == links.MSG_LINK_TOO_LATE
    assert not isinstance(refused.value, PaymentError)
    assert not gateway.sandbox.store.links
    assert lookup.get_visit(visit_id).payments == []


def test_payment_link_paid_confirms(world, users, gateway):
    admin, visit_id = admin_hold(world, users, at(2, 10))
    payment = links.create_payment_link(admin, visit_id)
    sent = len(gateway.sandbox.store.notifications)
    links.resend_payment_link(admin, payment.id)
    assert len(gateway.sandbox.store.notifications) == sent + 2
    answer = gateway.pay_link(payment.link_url)
    assert answer.status_code in (200, 303)
    assert gateway.sandbox.store.links[payment.razorpay_link_id]["status"] == "paid"
    gateway.deliver()
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert visit.status == "CONFIRMED" and visit.channel == "DESK"
    assert balance(chart.GATEWAY_CLEARING) == 52_950
    assert [a.event for a in visit.payments[0].attempts][:2] == ["link.created", "link.resent"]


def test_a_second_click_keeps_the_link_sent_and_sends_nothing(world, users, gateway, clock):
    """Review finding: a second "Create payment link" (a double click, a page opened
    before another admin's click) made a second link and cancelled the first, already in
    the patient's SMS and mail. While the first can be paid at the visit's price it
    stands: LinkPending names it, nothing made or sent."""
    admin, visit_id = admin_hold(world, users, at(2, 10))
    first = links.create_payment_link(admin, visit_id)
    store = gateway.sandbox.store
    sent = len(store.notifications)
    with pytest.raises(links.LinkPending, match="Resend to the patient") as refused:
        links.create_payment_link(admin, visit_id)
    assert refused.value.payment.id == first.id
    db.session.expire_all()
    assert [(p.id, p.status) for p in lookup.get_visit(visit_id).payments] == [
        (first.id, "PENDING")
    ]
    assert len(store.links) == 1 and len(store.notifications) == sent


def test_a_renewal_finding_the_admins_new_link_leaves_it(world, users, gateway, clock):
    """The renewal (``renewing=True``) after the first link's end still makes its link
    (the old one EXPIRED is not payable); should it find a payable link sent (here an
    admin's click made just before it, inside the job), LinkPending is not "no new link
    can be made": the link stands, the visit stays open, nothing is sent again."""
    admin, visit_id = admin_hold(world, users, at(3, 10))
    first_id = links.create_payment_link(admin, visit_id).id
    store = gateway.sandbox.store
    clicked = []
    real = links.create_payment_link

    def admin_clicks_first(actor, visit, *, renewing=False):
        if renewing and not clicked:
            clicked.append(real(users(world.admin), visit).id)
            sent.append(len(store.notifications))
        return real(actor, visit, renewing=renewing)

    sent = []
    clock.shift(timedelta(hours=24, minutes=1))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(links, "create_payment_link", admin_clicks_first)
        assert jobs.run_periodic(links.EXPIRE_LINKS) == 1
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert [(p.id, p.status) for p in visit.payments if p.kind == "LINK"] == [
        (first_id, "EXPIRED"),
        (clicked[0], "PENDING"),
    ]
    assert visit.status == "PENDING_PAYMENT" and len(store.notifications) == sent[0]


def test_payment_link_expiry_frees_the_slot_and_needs_attention(world, users, gateway):
    admin, visit_id = admin_hold(world, users, at(0, 13))
    payment = links.create_payment_link(admin, visit_id)
    gateway.sandbox.advance(3 * 3600 + 5)
    gateway.deliver()
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert visit.status == "EXPIRED" and visit.attention == "LINK_EXPIRED"
    assert db.session.get(type(payment), payment.id).status == "EXPIRED"
    assert not any(c.live for c in visit.items[0].claims)


def test_desk_payment(world, users, gateway):
    admin, visit_id = admin_hold(world, users, at(1, 10))
    link = links.create_payment_link(admin, visit_id)
    with pytest.raises(BookingError, match="receipt number"):
        quoted_desk_payment(admin, visit_id, "  ")
    with pytest.raises(PermissionDenied):
        quoted_desk_payment(users(world.patients[0]), visit_id, "R-1")
    payment = quoted_desk_payment(admin, visit_id, "R-00017")
    assert (payment.kind, payment.status, payment.amount) == ("DESK", "SUCCESSFUL", 52_950)
    assert lookup.get_visit(visit_id).status == "CONFIRMED"
    assert balance(chart.CASH_DESK) == 52_950
    assert db.session.get(type(link), link.id).status == "EXPIRED"  # the link was replaced
    gateway.deliver()  # payment_link.cancelled changes nothing
    assert lookup.get_visit(visit_id).status == "CONFIRMED"


def test_desk_payment_of_another_amount_than_confirmed_is_refused_and_writes_nothing(
    world, users, gateway
):
    """The admin confirmed ₹529.50 while a link of ₹529.50 was pending; the patient's
    coupon made it ₹476.55: refused with the new amount; the link, the coupon use and the
    visit as they were. The amount confirmed is recorded."""
    from portal.booking.models import Coupon

    admin, visit_id = admin_hold(world, users, at(1, 10))
    db.session.add(Coupon(code="SAVE10", kind="PERCENT", value=1000))
    db.session.commit()
    visits.apply_coupon(users(world.patients[0]), visit_id, "SAVE10")
    link = links.create_payment_link(admin, visit_id)
    with pytest.raises(BookingError, match="now ₹476.55, not the ₹529.50 shown"):
        checkout.record_desk_payment(admin, visit_id, "R-1", confirmed_amount=52_950)
    db.session.expire_all()
    assert db.session.get(type(link), link.id).status == "PENDING"
    assert lookup.get_visit(visit_id).status == "PENDING_PAYMENT"
    assert balance(chart.CASH_DESK) == 0
    payment = checkout.record_desk_payment(admin, visit_id, "R-1", confirmed_amount=47_655)
    assert (payment.amount, lookup.get_visit(visit_id).status) == (47_655, "CONFIRMED")


def test_desk_payment_without_the_amount_shown_is_refused_and_writes_nothing(world, users, gateway):
    """``confirmed_amount`` (the amount the admin's button stated) is required: without it
    a TypeError; ``None`` or not whole paise asked again, nothing recorded, the pending
    link kept. (Before, it defaulted to None and skipped the check: any caller recorded
    whatever was due.) The amount stated is recorded."""
    from portal.booking.prices import desk_quote

    admin, visit_id = admin_hold(world, users, at(1, 10))
    link = links.create_payment_link(admin, visit_id)
    with pytest.raises(TypeError):
        checkout.record_desk_payment(admin, visit_id, "R-1")
    for unshown in (None, "52950", 52_950.0, True):
        with pytest.raises(BookingError) as err:
            checkout.record_desk_payment(admin, visit_id, "R-1", confirmed_amount=unshown)
        assert err.value.message == checkout.MSG_DESK_AMOUNT_UNSHOWN
    db.session.expire_all()
    assert db.session.get(type(link), link.id).status == "PENDING"
    assert lookup.get_visit(visit_id).status == "PENDING_PAYMENT"
    assert balance(chart.CASH_DESK) == 0
    shown = desk_quote(lookup.get_visit(visit_id)).amount_due
    payment = checkout.record_desk_payment(admin, visit_id, "R-1", confirmed_amount=shown)
    assert (payment.amount, lookup.get_visit(visit_id).status) == (52_950, "CONFIRMED")


def test_sweep_expires_draft_holds_after_fifteen_minutes(world, users, clock):
    patient = users(world.patients[0])
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    clock.shift(timedelta(minutes=14))
    assert expire_holds() == 0
    clock.shift(timedelta(minutes=2))
    assert expire_holds() == 1
    db.session.expire_all()
    visit = lookup.get_visit(item.master_id)
    assert visit.status == "EXPIRED" and not any(c.live for c in visit.items[0].claims)
    with pytest.raises(BookingError, match="already paid|can no longer"):
        visits.add_item(
            patient,
            patient_id=patient.id,
            service_id=world.consult,
            provider_ids=[world.doctors[0]],
            clinic_id=world.clinic,
            start_at=at(1, 11),
            visit_id=visit.id,
        )
    assert expire_holds() == 0


def test_checkout_after_the_hold_ran_out_is_refused(world, users, gateway, clock):
    patient = users(world.patients[0])
    item = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    clock.shift(timedelta(minutes=16))
    with pytest.raises(BookingError, match="hold on these slots has expired"):
        quoted_checkout(patient, item.master_id, callback_url="http://portal.test/cb")
    assert lookup.get_visit(item.master_id).status == "EXPIRED"


def test_hold_sweep_leaves_visits_waiting_on_a_link_to_the_link_sweep(world, users, gateway, clock):
    """The link sweep re-issues an expired link while the start is ahead; the hold sweep
    must not expire such a visit first."""
    admin, visit_id = admin_hold(world, users, at(3, 10))
    links.create_payment_link(admin, visit_id)
    clock.shift(timedelta(hours=25))  # past the link's 24 h expiry, start still ahead
    assert expire_holds() == 0
    db.session.expire_all()
    assert lookup.get_visit(visit_id).status == "PENDING_PAYMENT"
