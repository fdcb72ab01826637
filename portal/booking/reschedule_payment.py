"""A reschedule fee paid online came back: the checkout callback (verified with the SDK)
or the webhook, in any order, any number of times. The booking moves to the time held
for it, or — slot gone, no longer confirmed, moved since, wrong amount, too late — the
money goes to the patient's wallet (docs/refunds.md "Reschedule"). The expiry sweep asks
the gateway about an order whose return and webhooks never came
(``apply_gateway_captures``).

Every fee payment captured is recorded, where reconciliation, the transactions console and
the dashboard's money in find it: on its reschedule (``razorpay_payment_id``) when applied
(DONE) or put in the wallet as the request's payment (FAILED: slot gone; EXPIRED: it came
after the request ended); any other (the wrong amount, a second payment on the order, one
after the row recorded another, any paid after the patient closed the account) in a
``FeeCapture`` row of its own, its money in the wallet (or, the account closed, owed back
to its source), as a visit's capture that confirmed nothing has its own payment row."""

import logging

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from portal import events
from portal.audit.service import record
from portal.booking import claims, holds, lifecycle, order_checks, postings
from portal.booking.errors import (  # noqa: F401  (the callback's messages, re-exported)
    MSG_BAD_SIGNATURE,
    MSG_CONFIRMING,
    MSG_NOT_PAID,
    BookingError,
    PaymentError,
)
from portal.booking.models import ATTENTION_CLOSED_ACCOUNT, FeeCapture, Reschedule, SlotClaim
from portal.booking.reschedule import (
    MSG_NOT_CONFIRMED,
    after_move,
    check_slot,
    lock,
    move,
    post_fee,
)
from portal.db import unit_of_work, utcnow
from portal.domain.states import BookingStatus, RescheduleStatus
from portal.extensions import db
from portal.gateway import GatewayError, get_payin
from portal.gateway.confirm import NotCapturedYet, Unconfirmed, confirmed_payment
from portal.i18n import N_
from portal.jobs import periodic
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerTransaction
from portal.ledger.service import credit, debit, post

MSG_SLOT_GONE = N_("The new time was taken before your payment arrived; the fee is in your wallet")
# The booking is no longer at the start the move was asked from (moved by a path that did
# not replace this request): the move was for a time it no longer has, so it moves nothing
# (``reschedule``'s ``shown_start``, checked again when the fee arrives).
MSG_MOVED_SINCE = N_(
    "Your appointment had moved to another time before your payment arrived; the fee is in "
    "your wallet"
)

log = logging.getLogger("portal.booking")

UNAPPLIED = "reschedule_unapplied"


def unapplied_key(reschedule_id, razorpay_payment_id):
    """The idempotency key of a fee payment put in the wallet (reconciliation finds the
    time of that credit by it)."""
    return f"{UNAPPLIED}:{reschedule_id}:{razorpay_payment_id}"


# When the fee payment a reschedule records went to the wallet (that credit's posting;
# NULL when it did not), as a column of a statement over reschedules: reconciliation and
# the settlements' overdue check date such a fee by it, as the ledger does.
# ``unapplied_key`` in SQL, of the payment a reschedule row records.
FEE_CREDIT_KEY = (
    sa.literal(f"{UNAPPLIED}:")
    + sa.cast(Reschedule.id, sa.String)
    + ":"
    + Reschedule.razorpay_payment_id
)
FEE_CREDITED_AT = (
    sa.select(LedgerTransaction.created_at)
    .where(LedgerTransaction.idempotency_key == FEE_CREDIT_KEY)
    .scalar_subquery()
)


def find_by_order(order_id):
    if not order_id:
        return None
    return db.session.scalar(sa.select(Reschedule).where(Reschedule.razorpay_order_id == order_id))


def complete_callback(params, reschedule_id=None):
    """The checkout came back: verify the signature with the SDK (for the order of
    ``reschedule_id`` when given), confirm the payment with the gateway's record, then
    apply it (idempotent with the webhook). Returns the Reschedule; raises PaymentError
    with a fixed message and writes nothing when the return is not signed and matching."""
    order_id = _param(params, "razorpay_order_id")
    payment_id = _param(params, "razorpay_payment_id")
    signature = _param(params, "razorpay_signature")
    if not (order_id and payment_id and signature):
        raise PaymentError(MSG_NOT_PAID)  # never the posted error text
    with unit_of_work():
        resched = find_by_order(order_id)
        payin = get_payin()
        if (
            resched is None
            or (reschedule_id is not None and resched.id != reschedule_id)
            or not payin.verify_payment_signature(order_id, payment_id, signature)
        ):
            raise PaymentError(MSG_BAD_SIGNATURE)
        try:
            fetched = confirmed_payment(payin, {"id": payment_id, "order_id": order_id})
        except NotCapturedYet:
            raise PaymentError(MSG_CONFIRMING) from None
        except Unconfirmed:
            raise PaymentError(MSG_BAD_SIGNATURE) from None
        except GatewayError:
            raise PaymentError(MSG_CONFIRMING) from None
        payment_captured(resched.id, payment_id, int(fetched["amount"]))
    return db.session.get(Reschedule, resched.id)


def _param(params, name):
    value = params.get(name)
    return value.strip()[:128] if isinstance(value, str) else ""


def payment_captured(reschedule_id, razorpay_payment_id, amount):
    """The fee was captured (callback or webhook; any order, any repetition): move the
    booking, or put the money in the wallet."""
    with claims.claiming(), unit_of_work():
        resched = db.session.get(Reschedule, reschedule_id)
        if resched is None:
            return None
        lifecycle.lock_visit(resched.visit_id)  # visit first, as reschedule() does
        resched = holds.lock_reschedule(reschedule_id)
        if resched.razorpay_payment_id == razorpay_payment_id or _recorded(razorpay_payment_id):
            return resched  # seen: nothing posted, recorded or told again
        item = lock(resched.booking)
        if resched.visit.patient.is_closed:
            return _refund_closed(resched, item, razorpay_payment_id, amount)
        wallet = chart.patient_wallet(resched.visit.patient_id)
        if (
            resched.status != RescheduleStatus.PENDING_PAYMENT
            or resched.razorpay_payment_id
            or amount != resched.total
        ):
            return _unapplied(
                resched, razorpay_payment_id, amount, wallet, "late, repeated or different payment"
            )
        resched.razorpay_payment_id = razorpay_payment_id
        reason = None
        if item.status != BookingStatus.CONFIRMED:
            reason = MSG_NOT_CONFIRMED
        elif item.start_at != resched.old_start:
            reason = MSG_MOVED_SINCE
        elif _holds(resched):  # the new time was held for this payment: it is ours
            move(item, resched.new_start, resched.new_end, resched)
            db.session.flush()
        elif not _moved_to_free_slot(item, resched):
            reason = MSG_SLOT_GONE
        if reason:
            holds.close_pending(resched, RescheduleStatus.FAILED, reason)
            post(
                UNAPPLIED,
                [debit(chart.GATEWAY_CLEARING, amount), credit(wallet, amount)],
                reference=("reschedule", resched.id),
                idempotency_key=unapplied_key(resched.id, razorpay_payment_id),
            )
            record(
                None,
                "booking.reschedule_failed",
                "booking",
                item.id,
                after={"reschedule_id": resched.id, "reason": reason, "to_wallet": amount},
            )
            events.reschedule_failed.send("booking", reschedule_id=resched.id)
            return resched
        post_fee(resched, item, chart.GATEWAY_CLEARING)
        after_move(resched, item, None)
        return resched


def _moved_to_free_slot(item, resched):
    """Move to the new time if it is still free (its hold had lapsed). On PostgreSQL the
    exclusion constraint decides, in a nested unit of work (a SAVEPOINT); on SQLite the
    claim lock is held, so the check is authoritative and writes nothing first. The
    booking horizon cannot refuse it: the time was within it when the move was asked, and
    is nearer now.

    A defensive branch, which no path reaches now (review): a move still waiting for its
    fee, its booking confirmed at the old time, has live claims on the new one (every path
    that releases them closes the move too: ``holds.close_pending``, the sweep, a stale
    hold's clearing, a newer request). Kept for a hold lost some other way
    (``test_a_wallet_move_and_an_online_fee_applied_onto_a_free_time_never_deadlock``
    makes that state with SQL). Another person's stale hold at the time is not cleared
    here, under this capture's locks (docs/booking.md, lock order): it is in the way, and
    the fee goes to the wallet (``MSG_SLOT_GONE``)."""
    try:
        with unit_of_work():
            end = check_slot(item, resched.new_start)
            move(item, resched.new_start, end)
            db.session.flush()
    except (BookingError, IntegrityError, OperationalError) as exc:
        if not isinstance(exc, BookingError) and not claims.is_lost_race(exc):
            raise
        db.session.expire(item)
        return False
    return True


def _holds(resched):
    return (
        db.session.scalar(
            sa.select(sa.func.count(SlotClaim.id)).where(
                SlotClaim.reschedule_id == resched.id, SlotClaim.live.is_(True)
            )
        )
        > 0
    )


def _recorded(razorpay_payment_id):
    return (
        db.session.scalar(
            sa.select(FeeCapture.id).where(FeeCapture.razorpay_payment_id == razorpay_payment_id)
        )
        is not None
    )


def _record_capture(resched, razorpay_payment_id, amount):
    """Where a fee payment that moved nothing is recorded: on the row, or a record of
    its own."""
    if (
        resched.status == RescheduleStatus.EXPIRED
        and not resched.razorpay_payment_id
        and amount == resched.total
    ):
        # The fee paid after the request ended: the row records it (its readers count the
        # fee's total, which is what came in; reconciliation reads it there).
        resched.razorpay_payment_id = razorpay_payment_id
    else:
        # The wrong amount (whether or not the request still waits), a second payment, or
        # one after the row recorded another: a record of its own, with what came in.
        db.session.add(
            FeeCapture(
                reschedule_id=resched.id, razorpay_payment_id=razorpay_payment_id, amount=amount
            )
        )


def _refund_closed(resched, item, razorpay_payment_id, amount):
    """A fee paid after the patient closed the account: nothing moves, nothing goes to the
    wallet (nobody can spend or be paid it); refunded in full to its source
    (``refunds.unapplied``), an admin alerted, the patient sent nothing."""
    if resched.status == RescheduleStatus.PENDING_PAYMENT:
        holds.close_pending(resched, RescheduleStatus.FAILED, "account closed")
    # Always a record of its own, never the row (even an EXPIRED one, the fee's amount):
    # its money is posted as ``closed_account_capture``, not ``reschedule_unapplied``, so
    # the readers that date a row's payment by that credit (``FEE_CREDITED_AT``) would not
    # find it; a ``FeeCapture`` is dated by its capture everywhere.
    db.session.add(
        FeeCapture(reschedule_id=resched.id, razorpay_payment_id=razorpay_payment_id, amount=amount)
    )
    db.session.flush()
    postings.refund_closed_account_capture(
        resched.visit,
        booking_id=item.id,
        razorpay_payment_id=razorpay_payment_id,
        amount=amount,
        reference=("reschedule", resched.id),
        reschedule_id=resched.id,
    )
    record(
        None,
        "booking.reschedule_payment_unapplied",
        "reschedule",
        resched.id,
        after={
            "razorpay_payment_id": razorpay_payment_id,
            "amount": amount,
            "why": "paid after the account was closed: refunded to its source",
        },
    )
    lifecycle.needs_attention(resched.visit, ATTENTION_CLOSED_ACCOUNT)
    return resched


def _unapplied(resched, razorpay_payment_id, amount, wallet, why):
    _record_capture(resched, razorpay_payment_id, amount)
    post(
        UNAPPLIED,
        [debit(chart.GATEWAY_CLEARING, amount), credit(wallet, amount)],
        reference=("reschedule", resched.id),
        idempotency_key=unapplied_key(resched.id, razorpay_payment_id),
    )
    record(
        None,
        "booking.reschedule_payment_unapplied",
        "reschedule",
        resched.id,
        after={"razorpay_payment_id": razorpay_payment_id, "amount": amount, "why": why},
    )
    # The patient paid and nothing moved: they are told where the money is.
    events.reschedule_fee_unapplied.send(
        "booking",
        reschedule_id=resched.id,
        razorpay_payment_id=razorpay_payment_id,
        amount=amount,
    )
    return resched


def apply_gateway_captures(reschedule_id):
    """Ask Razorpay about the fee's order and apply each payment captured there, as its
    webhook would have (``payment_captured``: the booking moves, or the fee goes to the
    wallet). For a checkout whose return and webhooks were lost, before the sweep expires
    it. False when the gateway could not answer (``order_checks.apply_captures``)."""
    order_id = db.session.scalar(
        sa.select(Reschedule.razorpay_order_id).where(Reschedule.id == reschedule_id)
    )
    if not order_id:
        return True
    return order_checks.apply_captures(
        order_id,
        lambda razorpay_payment_id, amount, _method: payment_captured(
            reschedule_id, razorpay_payment_id, amount
        ),
    )


# --- the sweep -----------------------------------------------------------------------------


@periodic("booking.expire_reschedules", every=300)
def expire_reschedules(now=None):
    """Checkouts for a reschedule fee that were never paid: EXPIRED and the held time
    released (a payment arriving later goes to the wallet). Razorpay is asked about each
    order first, as the visits' sweep does (``booking.tasks``): a fee captured there whose
    return and webhooks were lost is applied instead, and a gateway that cannot answer
    leaves the request for the next sweep. One unit of work per request, so one that
    fails leaves the others done. Returns how many expired."""
    now = now or utcnow()
    ids = db.session.scalars(
        sa.select(Reschedule.id)
        .where(Reschedule.status == RescheduleStatus.PENDING_PAYMENT, Reschedule.expires_at <= now)
        .order_by(Reschedule.expires_at)
    ).all()
    expired = 0
    for reschedule_id in ids:
        try:
            if not apply_gateway_captures(reschedule_id):
                continue
            with unit_of_work():
                row = holds.lock_reschedule(reschedule_id)  # a capture may have won meanwhile
                if row.status == RescheduleStatus.PENDING_PAYMENT and row.expires_at <= now:
                    holds.close_pending(row, RescheduleStatus.EXPIRED, holds.MSG_HOLD_EXPIRED)
                    expired += 1
        except Exception:
            log.exception("could not expire reschedule %s", reschedule_id)
    return expired
