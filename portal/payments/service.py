"""Processing what the gateway tells us about a visit's payment: captured (from the
checkout callback or a webhook, in any order, any number of times), authorized, failed,
link paid / expired / cancelled. Functions here run inside the caller's transaction
(the webhook job's, or the callback service's) and do not commit.

Idempotency: the visit row is locked first (PostgreSQL FOR UPDATE), then a gateway
payment id already recorded on any payment of the visit means "seen it": nothing
changes and nothing is posted again. ``razorpay_payment_id`` is unique in the database
and the confirmation posting has an idempotency key, as a second and third line."""
import sqlalchemy as sa

from portal.booking import claims, lifecycle, postings
from portal.booking.models import (ATTENTION_AMOUNT_MISMATCH, ATTENTION_LATE_PAYMENT,
                                   ATTENTION_LINK_EXPIRED, ATTENTION_PAYMENT_FAILED, EXPIRED)
from portal.db import utcnow
from portal.domain import schedule
from portal.domain.states import BookingStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import InsufficientBalance
from portal.payments.models import (FAILED, LINK, PENDING, SUCCESSFUL, WALLET, Payment,
                                    PaymentAttempt)


def find_payment(*, order_id=None, link_id=None, notes=None, razorpay_payment_id=None):
    """Our payment row for a gateway entity: by order id, link id, our own id in the
    notes (a link's payment carries the link's notes), or the gateway payment id."""
    if order_id:
        found = db.session.scalar(sa.select(Payment).where(Payment.razorpay_order_id == order_id))
        if found is not None:
            return found
    if link_id:
        found = db.session.scalar(sa.select(Payment).where(Payment.razorpay_link_id == link_id))
        if found is not None:
            return found
    ref = (notes or {}).get("portal_payment") if isinstance(notes, dict) else None
    if ref and str(ref).isdigit():
        found = db.session.get(Payment, int(ref))
        if found is not None:
            return found
    if razorpay_payment_id:
        return db.session.scalar(
            sa.select(Payment).where(Payment.razorpay_payment_id == razorpay_payment_id))
    return None


def _seen(visit, razorpay_payment_id):
    return any(p.razorpay_payment_id == razorpay_payment_id for p in visit.payments)


def _attempt_seen(payment, event, razorpay_payment_id):
    return db.session.scalar(sa.select(PaymentAttempt.id).where(
        PaymentAttempt.payment_id == payment.id, PaymentAttempt.event == event,
        PaymentAttempt.razorpay_payment_id == razorpay_payment_id)) is not None


def capture(payment, *, razorpay_payment_id, amount, method=None, source="webhook"):
    """A gateway payment of ``amount`` paise was captured for ``payment``. Returns the visit."""
    visit = lifecycle.lock_visit(payment.master_id)
    db.session.refresh(payment)
    if _seen(visit, razorpay_payment_id):
        return visit
    now = utcnow()
    if payment.status == PENDING and amount != payment.amount:
        return _unapplied(visit, payment, razorpay_payment_id, amount, method,
                          ATTENTION_AMOUNT_MISMATCH,
                          f"captured {amount} paise, expected {payment.amount}")
    live = [i for i in visit.items if i.status == BookingStatus.SCHEDULED]
    if payment.status == PENDING and live:
        payment.status, payment.paid_at = SUCCESSFUL, now
        payment.razorpay_payment_id, payment.method = razorpay_payment_id, method
        payment.captured_amount = amount
        lifecycle.add_attempt(payment, f"{source}.captured", SUCCESSFUL, razorpay_payment_id,
                              {"amount": amount, "method": method})
        lifecycle.confirm(visit, gateway_amount=amount, money_account=chart.GATEWAY_CLEARING,
                          source=source)
        return visit
    return _late(visit, payment, razorpay_payment_id, amount, method, source)


def _late(visit, payment, razorpay_payment_id, amount, method, source):
    """Captured after the payment row ended (hold expired, checkout abandoned, link
    expired). Recorded as a new SUCCESSFUL row; the visit is revived if every slot is
    still free and the wallet part can be taken again, else the money goes to the
    patient's wallet and an admin is told."""
    now = utcnow()
    expired = [i for i in visit.items if i.status == BookingStatus.EXPIRED]
    expected = sum(i.gateway_paid for i in expired)
    wallet_part = sum(i.wallet_paid for i in expired)
    revivable = (visit.status == EXPIRED and expired and amount == expected
                 and amount == payment.amount)
    if revivable:
        with claims.serialized():
            revivable = all(claims.relive(i) for i in expired)
            if revivable and wallet_part:
                revivable = _retake_wallet(visit, wallet_part)
        if not revivable:  # put back any claim made live before the one that failed
            for item in expired:
                claims.release(item)
    if not revivable:
        return _unapplied(visit, payment, razorpay_payment_id, amount, method,
                          ATTENTION_LATE_PAYMENT, "payment arrived after the hold ended")
    late = Payment(kind=payment.kind, amount=amount, status=SUCCESSFUL, late_for_id=payment.id,
                   razorpay_payment_id=razorpay_payment_id, method=method, paid_at=now,
                   captured_amount=amount)
    visit.payments.append(late)
    lifecycle.add_attempt(late, f"{source}.captured_late", SUCCESSFUL, razorpay_payment_id,
                          {"amount": amount, "revived": True})
    for item in expired:
        lifecycle.revive(item)
        item.confirmed_at = now
    lifecycle.confirm(visit, gateway_amount=amount, money_account=chart.GATEWAY_CLEARING,
                      source=f"{source} (late)")
    return visit


def _retake_wallet(visit, amount):
    wallet = Payment(kind=WALLET, amount=amount, status=PENDING)
    visit.payments.append(wallet)
    db.session.flush()
    try:
        postings.reserve_wallet(visit, wallet)
    except Exception as exc:  # BookingError from InsufficientBalance
        if not isinstance(getattr(exc, "__cause__", None), InsufficientBalance) and \
                getattr(exc, "field", None) != "wallet":
            raise
        visit.payments.remove(wallet)
        db.session.flush()
        return False
    return True


def _unapplied(visit, payment, razorpay_payment_id, amount, method, reason, memo):
    """Money that confirms nothing: recorded, put in the patient's wallet, flagged."""
    now = utcnow()
    row = payment
    if payment.status == PENDING and payment.razorpay_payment_id is None and \
            reason == ATTENTION_AMOUNT_MISMATCH:
        payment.razorpay_payment_id, payment.captured_amount = razorpay_payment_id, amount
        payment.method = method
        lifecycle.add_attempt(payment, "captured_wrong_amount", "MISMATCH", razorpay_payment_id,
                              {"amount": amount, "expected": payment.amount})
    else:
        row = Payment(kind=payment.kind, amount=amount, status=SUCCESSFUL,
                      late_for_id=payment.id, razorpay_payment_id=razorpay_payment_id,
                      method=method, paid_at=now, captured_amount=amount)
        visit.payments.append(row)
        lifecycle.add_attempt(row, "captured_unapplied", SUCCESSFUL, razorpay_payment_id,
                              {"amount": amount, "reason": reason})
    db.session.flush()
    postings.credit_unapplied_payment(visit, row, amount, memo)
    lifecycle.needs_attention(visit, reason)
    from portal.audit.service import record
    record(None, "payment.unapplied", "visit", visit.id,
           after={"payment_id": row.id, "amount": amount, "reason": reason})
    return visit


def authorized(payment, *, razorpay_payment_id, amount, method=None):
    """Recorded on the timeline only; capture (or order.paid) confirms."""
    lifecycle.lock_visit(payment.master_id)
    if not _attempt_seen(payment, "authorized", razorpay_payment_id):
        lifecycle.add_attempt(payment, "authorized", "AUTHORIZED", razorpay_payment_id,
                              {"amount": amount, "method": method})


def failed(payment, *, razorpay_payment_id, detail=None, policy=None):
    """One failed attempt. 3 failures: needs intervention (admin alert). The patient may
    retry on the same order while fewer than 5 attempts exist; after that the payment is
    FAILED and the hold is released."""
    policy = policy or lifecycle.policy()
    visit = lifecycle.lock_visit(payment.master_id)
    db.session.refresh(payment)
    if _attempt_seen(payment, "failed", razorpay_payment_id):
        return visit
    lifecycle.add_attempt(payment, "failed", FAILED, razorpay_payment_id, detail or {})
    db.session.flush()
    if payment.status != PENDING:
        return visit
    if schedule.needs_intervention(payment.failed_attempts, policy=policy):
        lifecycle.needs_attention(visit, ATTENTION_PAYMENT_FAILED)
    if not schedule.may_retry_payment(payment.attempt_count, policy=policy):
        payment.status = FAILED
        lifecycle.expire(visit, reason="payment failed too many times")
    return visit


def link_ended(payment, status_word):
    """payment_link.expired / payment_link.cancelled."""
    visit = lifecycle.lock_visit(payment.master_id)
    db.session.refresh(payment)
    if payment.status != PENDING:
        return visit
    payment.status = "EXPIRED"
    lifecycle.add_attempt(payment, f"link.{status_word}", "EXPIRED")
    if status_word == "expired":
        lifecycle.needs_attention(visit, ATTENTION_LINK_EXPIRED)
    if not any(p.status == PENDING and p.kind != WALLET for p in visit.payments):
        lifecycle.expire(visit, reason=f"payment link {status_word}")
    return visit


__all__ = ["find_payment", "capture", "authorized", "failed", "link_ended", "LINK"]
