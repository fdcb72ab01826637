"""A link ended by someone else while its expiry job waits for Razorpay (review finding).
The link ran out while Razorpay was away: the expiry job could not check it and waits for
a retry, the slot held (``links._hold_while_retried``). Meanwhile the patient pays at the
desk, or opens the visit and pays online (the page replaces the ended link with an
order). The retry took the row ended by them for its own expiry: it flagged the confirmed
visit LINK_EXPIRED and told the patient the booking had lapsed, or made a new link and so
abandoned the patient's order (the payment of it then went to the wallet, the visit
unpaid). The retry now goes on only with a link this job ended (``link.expired``)."""

from datetime import timedelta

import sqlalchemy as sa

from portal import jobs
from portal.booking import links, lookup
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.check import verify_ledger
from portal.ledger.service import balance
from portal.notify.models import Notification
from portal.outbox import OutboxItem
from portal.payments.models import Payment
from tests.booking.factories import at, quoted_checkout, quoted_desk_payment
from tests.payments.test_link_paid_webhooks_lost import _desk_visit, fast  # noqa: F401

CALLBACK = "http://portal.test/visits/callback"


def _link_job():
    return db.session.scalar(sa.select(OutboxItem).where(OutboxItem.job == links.LINK_EXPIRED))


def _notice_kinds(user_id):
    return db.session.scalars(
        sa.select(Notification.kind)
        .where(Notification.user_id == user_id)
        .order_by(Notification.id)
    ).all()


def _expiry_job_left_for_a_retry(gateway, clock):
    """The link ran out while Razorpay was away: the job could not check it, so it waits
    for a retry with the slot held (``_hold_while_retried``)."""
    clock.shift(timedelta(hours=24, seconds=5))
    gateway.sandbox.set_faults(error_rate=1.0, error_status=503)
    assert links.expire_payment_links() == 1
    db.session.expire_all()
    job = _link_job()
    assert job.done_at is None
    gateway.sandbox.set_faults(error_rate=0.0)
    return job


def test_a_desk_payment_while_the_expiry_job_waits_is_not_told_lapsed(
    world,
    users,
    fast,
    clock,  # noqa: F811
):
    """The patient pays at the desk while the expiry job waits for the gateway (the hold
    kept for it). The job's retry then finds the link ended (by the desk) and treats it
    as its own expiry: the confirmed visit is flagged LINK_EXPIRED and the patient is
    told that the link expired and the booking lapsed."""
    gateway = fast
    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    job = _expiry_job_left_for_a_retry(gateway, clock)
    quoted_desk_payment(users(world.admin), visit_id, "R-77")
    db.session.expire_all()
    assert lookup.get_visit(visit_id).status == "CONFIRMED"

    jobs.run_outbox_item(job.id)
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert visit.status == "CONFIRMED"
    assert visit.attention != "LINK_EXPIRED"
    assert "payment.link_expired" not in _notice_kinds(patient_id)


def test_a_patient_checkout_while_the_expiry_job_waits_is_not_abandoned_for_a_new_link(
    world,
    users,
    fast,
    clock,  # noqa: F811
):
    """The patient opens the visit and pays online while the expiry job waits (the page
    replaces the ended link with an order). The job's retry takes the link ended by the
    checkout for its own expiry, makes a new link and so abandons the patient's order:
    the patient's payment of it then lands in the wallet as a late payment and the visit
    stays unpaid."""
    gateway = fast
    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    job = _expiry_job_left_for_a_retry(gateway, clock)
    patient = users(world.patients[0])
    order = quoted_checkout(patient, visit_id, callback_url=CALLBACK).payment
    order_id, order_row = order.razorpay_order_id, order.id

    jobs.run_outbox_item(job.id)
    db.session.expire_all()
    order_status = db.session.get(Payment, order_row).status
    gateway.pay(order_id)
    gateway.deliver()
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert verify_ledger() == []
    assert (visit.status, balance(chart.patient_wallet(patient_id)), order_status) == (
        "CONFIRMED",
        0,
        "PENDING",
    )
