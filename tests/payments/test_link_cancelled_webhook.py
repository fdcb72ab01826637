"""Razorpay's ``payment_link.cancelled`` webhook. A link cancelled by hand before its
expiry ends, and the visit with it. The webhook of a renewal rolled back (review
finding): the expiry job checks the link at Razorpay and cancels it there
(``link_checks.settle``), then the new link cannot be made (Razorpay briefly away):
``RetryLater`` rolls the whole job back, so the old link's row is PENDING again, though
Razorpay has cancelled it. Its webhook then arrived before the retry and was taken for a
cancel by hand: the row ended and the visit expired (slot freed), the patient told the
booking lapsed, days before the first start. A pending link past its expiry is now left
to its expiry job, whoever cancelled it (``payment_events.link_cancelled``)."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal import jobs
from portal.booking import links, lookup
from portal.extensions import db
from portal.outbox import OutboxItem
from tests.booking.factories import at
from tests.payments.test_link_paid_webhooks_lost import _desk_visit


def _link_job():
    return db.session.scalar(sa.select(OutboxItem).where(OutboxItem.job == links.LINK_EXPIRED))


def test_the_cancelled_webhook_of_a_rolled_back_renewal_does_not_lapse_the_visit(
    world, users, gateway, clock
):
    """The expiry job checks the link at Razorpay and cancels it there (``settle``), then
    the new link cannot be made (Razorpay briefly away): ``RetryLater`` rolls the whole job
    back, so the old link's row is PENDING again, though Razorpay has cancelled it. Its
    ``payment_link.cancelled`` webhook then arrives before the retry and is taken for a
    cancel "by hand": the row ends and the visit expires (slot freed), so the retry makes
    no new link and the patient is told the booking lapsed, though the first start is
    days ahead."""
    from portal.gateway import GatewayUnavailable
    from portal.gateway.payin import RazorpayPayIn

    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    gateway.sandbox.store.offset -= 300  # Razorpay's expiry runs a few minutes behind ours
    clock.shift(timedelta(hours=24, minutes=1))
    real = RazorpayPayIn.create_payment_link
    calls = []

    def away_once(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise GatewayUnavailable("Razorpay away for a moment")
        return real(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RazorpayPayIn, "create_payment_link", away_once)
        assert links.expire_payment_links() == 1  # the job runs, and fails at the new link
        db.session.expire_all()
        job = _link_job()
        assert job.done_at is None
        assert gateway.sandbox.store.links[link.razorpay_link_id]["status"] == "cancelled"
        gateway.deliver()  # payment_link.cancelled, sent by Razorpay at once
        jobs.run_outbox_item(job.id)  # the outbox's retry, Razorpay back
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert (visit.status, [p.status for p in visit.payments]) == (
        "PENDING_PAYMENT",
        ["EXPIRED", "PENDING"],
    )


def test_a_link_cancelled_by_hand_before_its_expiry_ends_and_the_visit_lapses(
    world, users, gateway, clock
):
    """Someone cancels the link in Razorpay's dashboard while it is still running: its
    row ends (``link.cancelled``), and the visit, nothing else pending, expires."""
    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    clock.shift(timedelta(hours=2))
    gateway.sandbox.store.cancel_link(link.razorpay_link_id)
    gateway.deliver()
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert (visit.status, [p.status for p in visit.payments]) == ("EXPIRED", ["EXPIRED"])
    assert [a.event for a in visit.payments[0].attempts][-1] == "link.cancelled"
