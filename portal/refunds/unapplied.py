"""A payment captured for a closed account is sent back to where it came from.

A checkout (or payment link, or reschedule fee checkout) opened before the patient closed
their account can still be paid afterwards, in a browser tab left open. Such money
confirms nothing (a closed account holds no booking) and cannot go to the wallet (nobody
can spend it, and the portal cannot pay a wallet out: docs/privacy.md), so it is refunded
in full to its source through the gateway refund path every other Razorpay refund takes
(``refunds.execute``: its own idempotency key, retries, the ``refund.processed`` /
``refund.failed`` webhooks, an alert when it fails).

The books: booking posts the capture as money in at the gateway owed back at once
(``closed_account_capture``: ``gateway_clearing`` → ``refunds_payable``, once per Razorpay
payment id); this refund's processing settles it as for any refund (``refunds_payable`` →
``gateway_clearing``). Nothing reaches the patient's wallet."""

import sqlalchemy as sa

from portal import events, jobs
from portal.audit.service import record
from portal.domain.states import RefundStatus
from portal.extensions import db
from portal.refunds.common import new_idempotency_key
from portal.refunds.models import GATEWAY, Refund


@events.paid_for_closed_account.connect
def refund_to_source(
    sender, *, visit_id, patient_id, booking_id, payment_id, reschedule_id, razorpay_payment_id,
    amount,
):  # fmt: skip
    """A PENDING gateway refund of all of ``amount`` paise to ``razorpay_payment_id``,
    queued for Razorpay, in the capture's unit of work; at most one per Razorpay payment
    (a repeat of the signal adds nothing)."""
    existing = db.session.scalar(
        sa.select(Refund).where(
            Refund.razorpay_payment_id == razorpay_payment_id,
            Refund.visit_id == visit_id,
            Refund.payment_id.is_(None) if payment_id is None else Refund.payment_id == payment_id,
            Refund.reschedule_id.is_(None)
            if reschedule_id is None
            else Refund.reschedule_id == reschedule_id,
            Refund.retry_of_id.is_(None),
        )
    )
    if existing is not None:
        return existing
    refund = Refund(
        booking_id=booking_id,
        visit_id=visit_id,
        patient_id=patient_id,
        payment_id=payment_id,
        reschedule_id=reschedule_id,
        amount=amount,
        destination=GATEWAY,
        status=RefundStatus.PENDING,
        razorpay_payment_id=razorpay_payment_id,
        idempotency_key=new_idempotency_key(),
    )
    db.session.add(refund)
    db.session.flush()
    record(
        None,
        "payment.refunded_closed_account",
        "refund",
        refund.id,
        after={
            "razorpay_payment_id": razorpay_payment_id,
            "amount": amount,
            "visit_id": visit_id,
            "reschedule_id": reschedule_id,
        },
    )
    jobs.enqueue("refunds.execute", refund_id=refund.id, dedupe_key=f"refund-exec:{refund.id}")
    return refund
