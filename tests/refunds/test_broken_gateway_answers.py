"""Razorpay's answer broken on the way back (cut off mid-body, review r1_refunds): a
refund's attempt and the admin's "Send to wallet" treat it as no answer, as they treat a
timeout, instead of leaving the refund PENDING with no attempt counted, or a 500."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.db import utcnow
from portal.extensions import db
from portal.notify.models import Notification
from portal.refunds import failed as refunds_failed
from portal.refunds import lookup as refunds_lookup
from portal.refunds.common import MSG_GATEWAY_UNKNOWN, CancellationError
from portal.refunds.tasks import poll_refunds
from tests.booking.factories import at
from tests.broken_answers import BAD_GZIP, CUT, portal_through_broken_proxy
from tests.refunds.conftest import _ledger_stays_sound, clock, gateway, users, world  # noqa: F401
from tests.refunds.helpers import book_and_pay, quoted_cancel


def _alerts():
    return db.session.scalars(
        sa.select(Notification).where(Notification.kind == "alert.REFUND_FAILED")
    ).all()


def _paid_consult(world, users, gateway):
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
    return patient, visit


@pytest.mark.parametrize("mode", [CUT, BAD_GZIP])
def test_a_refund_answer_broken_on_the_way_is_counted_and_alerted_like_a_timeout(
    app, world, users, gateway, clock, mode
):
    """docs/refunds.md: an attempt that goes unanswered counts (attempts + 1, a retry
    later under the same key), and after REFUND_MAX_ATTEMPTS the refund is FAILED and the
    admins alerted. Razorpay answers 503 (nothing made), and that answer is broken on the
    way back: no answer."""
    patient, visit = _paid_consult(world, users, gateway)
    gateway.sandbox.set_faults(fail_next=50, error_status=503, match="refund")
    with portal_through_broken_proxy(app, gateway, match="/refund", mode=mode):
        quoted_cancel(patient, visit.id, [visit.items[0].id])  # its job asks Razorpay
        for minutes in (60, 180, 600):
            clock.move_to(utcnow() + timedelta(minutes=minutes))
            poll_refunds()
    db.session.expire_all()
    [refund] = refunds_lookup.refunds_for_visit(visit.id)
    assert not gateway.sandbox.store.refunds  # Razorpay made nothing
    assert (refund.status, refund.attempts) == ("FAILED", 3), refund.failure_reason
    assert "No answer from Razorpay" in refund.failure_reason
    assert _alerts()


def test_a_refund_made_though_its_answer_was_cut_off_is_found_by_its_key(
    app, world, users, gateway, clock
):
    """The refund is made at Razorpay and only its answer is lost: the next attempt, under
    the same key, finds it; one refund at Razorpay, and ours is PENDING on its id."""
    patient, visit = _paid_consult(world, users, gateway)
    with portal_through_broken_proxy(app, gateway, match="/refund"):
        quoted_cancel(patient, visit.id, [visit.items[0].id])
    db.session.expire_all()
    [refund] = refunds_lookup.refunds_for_visit(visit.id)
    assert (refund.status, refund.attempts, refund.razorpay_refund_id) == ("PENDING", 1, None)
    clock.move_to(utcnow() + timedelta(minutes=60))
    poll_refunds()
    db.session.expire_all()
    [made] = gateway.sandbox.store.refunds
    assert refund.razorpay_refund_id == made and refund.amount > 0


def test_send_to_wallet_when_razorpay_cannot_be_read_is_refused_not_a_500(
    app, world, users, gateway, clock
):
    """docs/refunds.md: "If Razorpay cannot be asked, the wallet is refused until it can"
    (MSG_GATEWAY_UNKNOWN). Razorpay's list of the payment's refunds cut off mid-answer."""
    patient, visit = _paid_consult(world, users, gateway)
    gateway.sandbox.set_faults(fail_next=50, error_status=503, match="POST /v1/payments")
    quoted_cancel(patient, visit.id, [visit.items[0].id])
    for minutes in (60, 180):
        clock.move_to(utcnow() + timedelta(minutes=minutes))
        poll_refunds()
    db.session.expire_all()
    [refund] = refunds_lookup.refunds_for_visit(visit.id)
    assert refund.status == "FAILED" and refund.razorpay_refund_id is None
    gateway.sandbox.set_faults(fail_next=0)
    with portal_through_broken_proxy(app, gateway, match="/refunds", method="GET"):
        with pytest.raises(CancellationError) as refused:
            refunds_failed.refund_to_wallet(users(world.admin), refund.id, "card closed")
    assert str(refused.value) == str(MSG_GATEWAY_UNKNOWN)
    db.session.expire_all()
    assert refund.status == "FAILED" and not refund.superseded
