"""A payment's record: finding our row for a gateway entity, its attempt timeline and its
status moves (through ``portal.domain.states.PAYMENT``). Everything runs in the caller's
unit of work; nothing here knows about visits (``portal.booking`` decides what a payment
means for a visit)."""

import sqlalchemy as sa

from portal.db import utcnow
from portal.domain.ids import parse_id
from portal.domain.states import PAYMENT, PaymentStatus
from portal.extensions import db
from portal.payments.models import LINK, Payment, PaymentAttempt


def find_payment(*, order_id=None, link_id=None, notes=None, razorpay_payment_id=None):
    """Our payment row for a gateway entity: by order id, link id, our own id in the
    notes (a link's payment carries the link's notes), or the gateway payment id.

    Our id in the notes counts only for a link's row, and for the named link's row when
    the entity names one: a link whose creation was rolled back names a row that never
    stayed, and SQLite hands a rolled-back id to the next row (another visit's)."""
    if order_id:
        found = db.session.scalar(sa.select(Payment).where(Payment.razorpay_order_id == order_id))
        if found is not None:
            return found
    if link_id:
        found = db.session.scalar(sa.select(Payment).where(Payment.razorpay_link_id == link_id))
        if found is not None:
            return found
    ref = (notes or {}).get("portal_payment") if isinstance(notes, dict) else None
    if parse_id(str(ref or "")):
        found = db.session.get(Payment, parse_id(str(ref)))
        if (
            found is not None
            and found.kind == LINK
            and (not link_id or found.razorpay_link_id in (None, link_id))
        ):
            return found
    if razorpay_payment_id:
        return db.session.scalar(
            sa.select(Payment).where(Payment.razorpay_payment_id == razorpay_payment_id)
        )
    return None


# Timeline events of a capture whose money paid for nothing (late, or the wrong amount):
# it went to the patient's wallet on a row of its own (``booking.payment_events._unapplied``).
CAPTURED_UNAPPLIED, CAPTURED_WRONG_AMOUNT = "captured_unapplied", "captured_wrong_amount"
# Captured for a closed account's visit: refunded to its source (``refunds.unapplied``).
CAPTURED_FOR_CLOSED_ACCOUNT = "captured_closed_account"


def paid_for_nothing(payment):
    """The payment's capture went to the wallet instead of paying its visit: the receipt,
    the refunds and the transactions console's breakup leave it out. The row's own flag,
    set when that was decided: the console projects a payment inside the capture's
    transaction, where reading the timeline cost a statement (docs/performance.md)."""
    return payment.unapplied


def refunded_to_source(payment):
    """The payment's capture (one that paid for nothing) was for a closed account: refunded
    to where it came from, not put in the wallet (its timeline's one capture event says
    which)."""
    return any(a.event == CAPTURED_FOR_CLOSED_ACCOUNT for a in payment.attempts)


def captured_under(payment, razorpay_payment_id):
    """Captured already under this gateway payment id: a repeat of the capture moves
    nothing, and an authorization of it adds nothing."""
    return payment.razorpay_payment_id == razorpay_payment_id and bool(payment.captured_amount)


def add_attempt(payment, event, status, razorpay_payment_id=None, detail=None):
    """One line of the payment's timeline; ``status`` is a ``PaymentStatus`` or an
    ``AttemptNote`` (what the event said)."""
    # Set from the attempt's side: an unloaded ``payment.attempts`` is not read just to
    # append to it (the backref queues the new line for when it is loaded).
    attempt = PaymentAttempt(
        payment=payment,
        event=event,
        status=status,
        razorpay_payment_id=razorpay_payment_id,
        detail=detail,
        at=utcnow(),
    )
    db.session.add(attempt)
    return attempt


def attempt_seen(payment, event, razorpay_payment_id):
    return (
        db.session.scalar(
            sa.select(PaymentAttempt.id).where(
                PaymentAttempt.payment_id == payment.id,
                PaymentAttempt.event == event,
                PaymentAttempt.razorpay_payment_id == razorpay_payment_id,
            )
        )
        is not None
    )


def succeed(payment, event, *, now=None, razorpay_payment_id=None, detail=None):
    """PENDING → SUCCESSFUL, paid now, on the timeline."""
    PAYMENT.move(payment, PaymentStatus.SUCCESSFUL)
    payment.paid_at = now or utcnow()
    add_attempt(payment, event, PaymentStatus.SUCCESSFUL, razorpay_payment_id, detail)
    return payment


def end(payment, status, event):
    """A pending payment ends without money (EXPIRED / FAILED), on the timeline. False
    when it was not pending (nothing changes)."""
    if payment.status != PaymentStatus.PENDING:
        return False
    PAYMENT.move(payment, status)
    add_attempt(payment, event, status)
    return True
