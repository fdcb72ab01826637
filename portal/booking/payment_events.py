"""What the gateway tells us about a visit's payment: captured (from the checkout callback
or a webhook, in any order, any number of times), authorized, failed, link paid / expired
/ cancelled. Each is a unit of work (nested as a SAVEPOINT inside the webhook job's or the
callback's).

Idempotency: the visit row is locked first (PostgreSQL FOR UPDATE), then a gateway
payment id already recorded on any payment of the visit means "seen it": nothing
changes and nothing is posted again. ``razorpay_payment_id`` is unique in the database
and the confirmation posting has an idempotency key, as a second and third line."""

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from portal.audit.service import record
from portal.booking import claims, coupons, lifecycle, postings
from portal.booking.errors import AccountClosed, AccountDeactivated, BookingError
from portal.booking.models import (
    ATTENTION_AMOUNT_MISMATCH,
    ATTENTION_CLOSED_ACCOUNT,
    ATTENTION_LATE_PAYMENT,
    ATTENTION_PAYMENT_FAILED,
)
from portal.catalog.slots import check_booking_slot
from portal.config import policy as policy_in_force
from portal.db import unit_of_work, utcnow
from portal.domain import schedule
from portal.domain.slots import MSG_TAKEN
from portal.domain.states import PAYMENT, BookingStatus, PaymentStatus, VisitStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.payments import records
from portal.payments.models import LINK, WALLET, AttemptNote, Payment


def _seen(visit, razorpay_payment_id):
    return any(p.razorpay_payment_id == razorpay_payment_id for p in visit.payments)


def _read_payments(visit):
    """The visit's payments read again now that it is locked (a concurrent event may have
    moved one): one query, which refreshes the payment being handled too (it is one of
    them) where a refresh of it and a load of the collection took two."""
    rows = db.session.scalars(
        sa.select(Payment)
        .where(Payment.master_id == visit.id)
        .order_by(Payment.id)
        .execution_options(populate_existing=True)
    ).all()
    set_committed_value(visit, "payments", rows)


def capture(payment, *, razorpay_payment_id, amount, method=None, source="webhook"):
    """A gateway payment of ``amount`` paise was captured for ``payment``. Returns the visit."""
    with unit_of_work():
        visit = lifecycle.lock_visit(payment.master_id)
        _read_payments(visit)
        lifecycle.load_items(visit)
        if _seen(visit, razorpay_payment_id):
            return visit
        if visit.patient.is_closed:
            return _refund_closed(visit, payment, razorpay_payment_id, amount, method, source)
        if payment.status == PaymentStatus.PENDING and amount != payment.amount:
            return _unapplied(
                visit,
                payment,
                razorpay_payment_id,
                amount,
                method,
                ATTENTION_AMOUNT_MISMATCH,
                f"captured {amount} paise, expected {payment.amount}",
            )
        live = [i for i in visit.items if i.status == BookingStatus.SCHEDULED]
        if payment.status == PaymentStatus.PENDING and live:
            payment.razorpay_payment_id, payment.method = razorpay_payment_id, method
            payment.captured_amount = amount
            records.succeed(
                payment,
                f"{source}.captured",
                razorpay_payment_id=razorpay_payment_id,
                detail={"amount": amount, "method": method},
            )
            lifecycle.confirm(
                visit, gateway_amount=amount, money_account=chart.GATEWAY_CLEARING, source=source
            )
            return visit
        return _late(visit, payment, razorpay_payment_id, amount, method, source)


def _late(visit, payment, razorpay_payment_id, amount, method, source):
    """Captured after the payment row ended (hold expired, checkout abandoned, link
    expired). Recorded as a new SUCCESSFUL row; the visit is revived if every slot is
    still free and its coupon use and wallet part can be taken again (and the account is
    not deactivated: nobody could sign in to see it), else the money goes to the
    patient's wallet and an admin is told."""
    now = utcnow()
    expired = [i for i in visit.items if i.status == BookingStatus.EXPIRED]
    expected = sum(i.gateway_paid for i in expired)
    wallet_part = sum(i.wallet_paid for i in expired)
    revivable = (
        visit.status == VisitStatus.EXPIRED
        and expired
        and amount == expected
        and amount == payment.amount
        and all(_still_offered(i, now) for i in expired)
    )
    closed = False
    if revivable:
        with claims.serialized():
            try:
                revivable = all(claims.relive(i) for i in expired)
            except AccountClosed:  # closed since it was read above: the claims' trigger
                revivable, closed = False, True
            except AccountDeactivated:  # nobody to see it: the money waits in the wallet
                revivable = False
            # The expiry gave the coupon use back: the discount stays only with a use.
            # Before the wallet part, as a use is undone by giving it back.
            revivable = revivable and coupons.retake_use(visit, now)
            if revivable and wallet_part:
                revivable = _retake_wallet(visit, wallet_part)
        if not revivable:  # put back any claim made live, and a use taken, before it failed
            for item in expired:
                claims.release(item)
            coupons.give_back(visit)
    if closed:
        return _refund_closed(visit, payment, razorpay_payment_id, amount, method, source)
    if not revivable:
        return _unapplied(
            visit,
            payment,
            razorpay_payment_id,
            amount,
            method,
            ATTENTION_LATE_PAYMENT,
            "payment arrived after the hold ended",
        )
    _extra_capture(
        visit,
        payment,
        razorpay_payment_id,
        amount,
        method,
        now,
        f"{source}.captured_late",
        {"revived": True},
    )
    for item in expired:
        lifecycle.revive(item)
        item.confirmed_at = now
    lifecycle.confirm(
        visit,
        gateway_amount=amount,
        money_account=chart.GATEWAY_CLEARING,
        source=f"{source} (late)",
    )
    return visit


def _still_offered(item, now):
    """Whether an expired booking could be held again but for the lead time (its patient
    chose it in time): still ahead, its providers active, working then and not on leave
    (leave and a deactivation are refused only over live bookings, and this one was not),
    the service and clinic active. Who else holds the time is the claims' question.
    Judged at the hold's moment (``now=item.created_at``): the patient chose it in time, so
    the lead time, which the capture's later moment may have crossed, does not refuse it.
    (The booking horizon, ``domain.slots.BOOK_DAYS_AHEAD``, could not refuse it either way:
    a time only comes nearer.)"""
    if item.start_at <= now:
        return False
    messages = check_booking_slot(
        list(item.providers),
        item.service,
        item.clinic,
        item.start_at,
        now=item.created_at,
        duration=item.end_at - item.start_at,  # its own length, whatever the service's now
    )
    return not messages or messages == [MSG_TAKEN]


def _retake_wallet(visit, amount):
    wallet = Payment(kind=WALLET, amount=amount, status=PaymentStatus.PENDING)
    visit.payments.append(wallet)
    db.session.flush()
    try:
        postings.reserve_wallet(visit, wallet)
    except BookingError as exc:  # the balance is too low now (InsufficientBalance)
        if exc.field != "wallet":
            raise
        visit.payments.remove(wallet)
        db.session.flush()
        return False
    return True


def _extra_capture(
    visit, payment, razorpay_payment_id, amount, method, now, event, detail, note=None
):
    """A captured payment beside ``payment`` (after its hold, or confirming nothing): a
    SUCCESSFUL row of its own on the visit, with its timeline entry (``note``: what that
    entry says, when not plainly SUCCESSFUL)."""
    row = Payment(
        kind=payment.kind,
        amount=amount,
        status=PaymentStatus.SUCCESSFUL,
        late_for_id=payment.id,
        razorpay_payment_id=razorpay_payment_id,
        method=method,
        paid_at=now,
        captured_amount=amount,
    )
    visit.payments.append(row)
    records.add_attempt(
        row,
        event,
        note or PaymentStatus.SUCCESSFUL,
        razorpay_payment_id,
        {"amount": amount, **detail},
    )
    return row


def _unapplied(visit, payment, razorpay_payment_id, amount, method, reason, memo):
    """Money that confirms nothing: recorded on a row of its own (flagged ``unapplied``),
    put in the patient's wallet, the visit flagged. Never on ``payment`` itself: a pending
    one stays payable (after the wrong amount the patient may pay the right one on the
    same order, and that capture must not overwrite this one's record)."""
    wrong = reason == ATTENTION_AMOUNT_MISMATCH
    row = _extra_capture(
        visit,
        payment,
        razorpay_payment_id,
        amount,
        method,
        utcnow(),
        records.CAPTURED_WRONG_AMOUNT if wrong else records.CAPTURED_UNAPPLIED,
        {"expected": payment.amount} if wrong else {"reason": reason},
        note=AttemptNote.MISMATCH if wrong else None,
    )
    row.unapplied = True
    db.session.flush()
    postings.credit_unapplied_payment(visit, row, amount, memo)
    lifecycle.needs_attention(visit, reason)
    record(
        None,
        "payment.unapplied",
        "visit",
        visit.id,
        after={"payment_id": row.id, "amount": amount, "reason": reason},
    )
    return visit


def _refund_closed(visit, payment, razorpay_payment_id, amount, method, source):
    """Captured for a visit whose patient has closed the account (a checkout or link
    opened before, paid after): it confirms and revives nothing and is not put in the
    wallet (nobody can spend or be paid it), but refunded in full to its source
    (``refunds.unapplied``); an admin is alerted, the patient is sent nothing."""
    row = _extra_capture(
        visit,
        payment,
        razorpay_payment_id,
        amount,
        method,
        utcnow(),
        records.CAPTURED_FOR_CLOSED_ACCOUNT,
        {"reason": ATTENTION_CLOSED_ACCOUNT, "source": source},
    )
    row.unapplied = True
    db.session.flush()
    postings.refund_closed_account_capture(
        visit,
        booking_id=min(i.id for i in visit.items),
        razorpay_payment_id=razorpay_payment_id,
        amount=amount,
        reference=("payment", row.id),
        payment_id=row.id,
    )
    lifecycle.needs_attention(visit, ATTENTION_CLOSED_ACCOUNT)
    record(
        None,
        "payment.unapplied",
        "visit",
        visit.id,
        after={
            "payment_id": row.id,
            "amount": amount,
            "reason": ATTENTION_CLOSED_ACCOUNT,
            "refunded_to_source": True,
        },
    )
    return visit


def authorized(payment, *, razorpay_payment_id, amount, method=None):
    """Recorded on the timeline only, while the payment is not captured under that id
    (after the capture, its line says it all); capture (or order.paid) confirms."""
    with unit_of_work():
        lifecycle.lock_visit(payment.master_id)
        db.session.refresh(payment)  # a capture may have committed since it was read
        if records.captured_under(payment, razorpay_payment_id):
            return
        if not records.attempt_seen(payment, "authorized", razorpay_payment_id):
            records.add_attempt(
                payment,
                "authorized",
                AttemptNote.AUTHORIZED,
                razorpay_payment_id,
                {"amount": amount, "method": method},
            )


def failed(payment, *, razorpay_payment_id, detail=None, policy=None):
    """One failed attempt: the visit needs attention from the first (HIGH admin alert).
    The patient may retry on the same order while fewer than 5 attempts exist; after that
    the payment is FAILED and the hold is released."""
    policy = policy or policy_in_force()
    with unit_of_work():
        visit = lifecycle.lock_visit(payment.master_id)
        db.session.refresh(payment)
        if records.attempt_seen(payment, "failed", razorpay_payment_id):
            return visit
        records.add_attempt(
            payment, "failed", PaymentStatus.FAILED, razorpay_payment_id, detail or {}
        )
        db.session.flush()
        if payment.status != PaymentStatus.PENDING:
            return visit
        # The first failure already needs an operator (HIGH alert, "needs attention");
        # intervention (3 failures) shows in the next action.
        lifecycle.needs_attention(visit, ATTENTION_PAYMENT_FAILED)
        if not schedule.may_retry_payment(payment.attempt_count, policy=policy):
            PAYMENT.move(payment, PaymentStatus.FAILED)
            if payment.kind == LINK and payment.razorpay_link_id:
                # Ended here, not by the expiry below (which cancels only pending links):
                # else the SMS link still takes money for a visit whose slot is freed.
                lifecycle.cancel_link_at_gateway(payment)
            lifecycle.expire(visit, reason="payment failed too many times")
        return visit


def link_cancelled(payment):
    """payment_link.cancelled: a link cancelled at Razorpay by hand (the portal's own
    cancellations end the row first) ends, and the visit with it when nothing else is
    pending. A pending link past its expiry is left to its expiry job, whoever cancelled
    it. (payment_link.expired is the expiry sweep's: ``links.expired_at_gateway``.)"""
    with unit_of_work():
        visit = lifecycle.lock_visit(payment.master_id)
        db.session.refresh(payment)
        if (
            payment.kind == LINK
            and payment.status == PaymentStatus.PENDING
            and payment.expires_at is not None
            and payment.expires_at <= utcnow()
        ):
            # The expiry job's own cancel (``link_checks.settle``) rolled back with a retry
            # (no new link made): the row is PENDING again, the job queued, and it decides
            # (a new link, or the visit lapses); else the sweep queues it within a minute.
            # Chosen over committing the link's ending before the new link is made: the job
            # commits with its outbox item's done mark (``jobs.run_outbox_item``), so that
            # would split it in two jobs; this is one condition. (Review finding: this took
            # it for a cancel by hand and lapsed a visit days ahead.)
            return visit
        if not records.end(payment, PaymentStatus.EXPIRED, "link.cancelled"):
            return visit
        if not any(p.status == PaymentStatus.PENDING and p.kind != WALLET for p in visit.payments):
            lifecycle.expire(visit, reason="payment link cancelled")
        return visit
