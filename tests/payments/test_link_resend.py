"""Resending a payment link (the admin's "Resend to the patient"), when it can no longer
be sent (review finding): the link ran out, or Razorpay refuses it. The admin was told
"Payments are unavailable right now; please try again in a few minutes", which no retry
would change."""

from datetime import timedelta

import pytest

from portal.booking import links
from portal.booking.errors import BookingError
from portal.extensions import db
from portal.payments.models import Payment
from tests.booking.factories import at
from tests.payments.test_link_paid_webhooks_lost import _desk_visit


def test_resending_a_link_razorpay_has_expired_does_not_say_payments_are_down(
    world, users, gateway, clock
):
    """The link ran out (Razorpay expired it; the portal's sweep has not run yet, so the
    row is still PENDING and the page still offers Resend). Razorpay refuses to send an
    expired link; the admin is told "Payments are unavailable right now; please try
    again in a few minutes", which no retry will change."""
    from portal.booking.checkout import MSG_GATEWAY_DOWN

    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    clock.shift(timedelta(hours=24, seconds=5))
    gateway.sandbox.advance(0)
    assert gateway.sandbox.store.links[link.razorpay_link_id]["status"] == "expired"
    with pytest.raises(BookingError) as refused:
        links.resend_payment_link(users(world.admin), link.id)
    assert refused.value.message != MSG_GATEWAY_DOWN


def test_resending_a_link_past_its_expiry_says_so(world, users, gateway, clock):
    """Past its expiry by the portal's clock (the sweep not run yet): refused before
    Razorpay is asked, with the reason, and nothing written on the link's timeline."""
    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    clock.shift(timedelta(hours=24, seconds=5))
    with pytest.raises(BookingError) as refused:
        links.resend_payment_link(users(world.admin), link.id)
    assert refused.value.message == links.MSG_RESEND_EXPIRED
    db.session.expire_all()
    assert "link.resent" not in [a.event for a in db.session.get(Payment, link.id).attempts]


def test_resending_a_link_paid_at_razorpay_says_it_can_no_longer_be_sent(world, users, gateway):
    """Paid at Razorpay, its webhooks not here yet: Razorpay refuses to send it (a 400),
    which is said as such, not as payments being down."""
    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    gateway.pay_link(link.link_url)  # its webhooks stay queued at the sandbox
    assert gateway.sandbox.store.links[link.razorpay_link_id]["status"] == "paid"
    with pytest.raises(BookingError) as refused:
        links.resend_payment_link(users(world.admin), link.id)
    assert refused.value.message == links.MSG_RESEND_REFUSED
    gateway.deliver()
    db.session.expire_all()
    assert db.session.get(Payment, link.id).status == "SUCCESSFUL"
