"""State changes of a visit that several use cases share: deriving the stored status,
confirming (paid), expiring (never paid), abandoning a pending checkout, and invoice
numbers. They run inside the caller's unit of work and never commit; every status moves
through ``portal.domain.states`` (VISIT, BOOKING, BOOKING_LATE_PAYMENT, and PAYMENT via
``portal.payments.records``)."""

from datetime import timedelta
from functools import cache

import sqlalchemy as sa
from sqlalchemy.orm import lazyload
from sqlalchemy.orm.attributes import set_committed_value

from portal import events, jobs
from portal.audit.service import record
from portal.booking import claims, coupons, invoices, postings, series
from portal.booking.models import (
    OPEN_VISIT_STATUSES,
    IndividualBooking,
    InvoiceCounter,
    MasterBooking,
)
from portal.config import setting
from portal.db import utcnow
from portal.domain.states import (
    BOOKING,
    BOOKING_LATE_PAYMENT,
    VISIT,
    BookingStatus,
    MasterStatus,
    PaymentStatus,
    VisitStatus,
    derive_master_status,
)
from portal.extensions import db
from portal.payments import records
from portal.payments.models import LINK, WALLET

# ``link_checks.cancel_link``'s job (named here: that module imports this one's callers).
CANCEL_LINK = "payments.cancel_link"


def hold_lifetime():
    minutes = setting("BOOKING_HOLD_MINUTES")
    return timedelta(minutes=int(minutes))


def order_lifetime():
    """How long a checkout's order keeps the slots (the hold is extended to this)."""
    minutes = setting("BOOKING_ORDER_MINUTES")
    return timedelta(minutes=int(minutes))


def lock_visit(visit_id):
    """The visit, row-locked on PostgreSQL (FOR UPDATE) and freshly read: every payment
    event for one visit is handled one at a time. SQLite serialises writers itself.
    What the caller reads next (its payments, its items) is read by statements of their
    own, after the lock: joined to this one, PostgreSQL would return them as they were
    before the wait for the lock (READ COMMITTED re-reads only the locked row)."""
    return db.session.scalar(_lock_visit(claims.is_postgres()), {"visit_id": visit_id})


@cache
def _lock_visit(postgres):
    """Built once: building a statement and its cache key costs about as much CPU as
    running it, on every payment event and every pay step."""
    query = (
        sa.select(MasterBooking)
        .where(MasterBooking.id == sa.bindparam("visit_id"))
        .execution_options(populate_existing=True)
    )
    return query.with_for_update() if postgres else query


def load_items(visit):
    """The visit's items without their providers, for money work (paying, a capture),
    which never reads them: the relationship's eager (selectin) load of them costs a
    query each time. Anything that does read them later gets them lazily."""
    if "items" not in sa.inspect(visit).unloaded:
        return visit.items
    rows = db.session.scalars(
        sa.select(IndividualBooking)
        .where(IndividualBooking.master_id == visit.id)
        .order_by(IndividualBooking.start_at, IndividualBooking.id)
        .options(lazyload(IndividualBooking.providers))
    ).all()
    set_committed_value(visit, "items", rows)
    return rows


def derive_status(visit):
    statuses = [i.status for i in visit.items]
    if not statuses:
        return VisitStatus.DRAFT
    master = derive_master_status(statuses)
    if master == MasterStatus.PENDING:
        return (
            VisitStatus.PENDING_PAYMENT if visit.pending_payment is not None else VisitStatus.DRAFT
        )
    return VisitStatus(master)


def refresh_status(visit):
    """Store the status derived from the items (a no-op when it is unchanged)."""
    return VISIT.move(visit, derive_status(visit), allow_same=True)


def move(item, target):
    return BOOKING.move(item, target)


def revive(item):
    """EXPIRED → CONFIRMED for a gateway payment captured after the hold ran out while the
    slot is still free (docs/booking.md "Late payments"): the domain's one documented
    exception, its own machine."""
    return BOOKING_LATE_PAYMENT.move(item, BookingStatus.CONFIRMED)


# --- confirmation -------------------------------------------------------------------------


def confirm(visit, *, gateway_amount, money_account, actor=None, source=""):
    """Paid: items CONFIRMED, payments SUCCESSFUL, coupon use kept, ledger posted once,
    invoice number, follow-up work queued. Safe to call twice (second time: no-op)."""
    now = utcnow()
    changed = False
    # The lines this confirmation invoices (a revived late payment's are CONFIRMED already)
    # keep the clinic's GSTIN and split from now on; stamped before they change, so one
    # UPDATE per item carries both.
    invoices.issue_lines(
        [i for i in visit.items if i.status in (BookingStatus.SCHEDULED, BookingStatus.CONFIRMED)]
    )
    for item in visit.items:
        if item.status == BookingStatus.SCHEDULED:
            move(item, BookingStatus.CONFIRMED)
            item.confirmed_at = now
            changed = True
    wallet_amount = 0
    for payment in visit.payments:
        if payment.kind == WALLET and payment.status == PaymentStatus.PENDING:
            records.succeed(payment, "wallet.used", now=now)
        if payment.kind == WALLET and payment.status == PaymentStatus.SUCCESSFUL:
            wallet_amount += payment.amount
    if not changed and visit.status == VisitStatus.CONFIRMED:
        return visit
    coupons.confirm_use(visit)
    postings.post_confirmation(
        visit,
        gateway_amount=gateway_amount,
        wallet_amount=wallet_amount,
        money_account=money_account,
    )
    if visit.invoice_no is None:
        visit.invoice_no = next_invoice_number(now)
        invoices.issue_names(visit)
    visit.confirmed_at = visit.confirmed_at or now
    visit.hold_expires_at = None
    refresh_status(visit)
    record(
        actor,
        "visit.confirm",
        "visit",
        visit.id,
        after={
            "status": visit.status,
            "source": source,
            "invoice_no": visit.invoice_no,
            "gateway": gateway_amount,
            "wallet": wallet_amount,
        },
    )
    events.visit_confirmed.send("booking", visit_id=visit.id)
    return visit


def next_invoice_number(at):
    """ "CP/26-27/000001": numbered per financial year (``series``)."""
    fy, number = series.next_number(InvoiceCounter, at)
    return series.document_number("CP", fy, number)


# --- expiry and abandonment ----------------------------------------------------------------


def cancel_link_at_gateway(payment):
    """A link the portal ended, cancelled at Razorpay after the commit that ended it (the
    ``payments.cancel_link`` job, ``link_checks.cancel_link``: a refusal because it was
    paid meanwhile captures that payment); once per row, however many paths end it."""
    jobs.enqueue(CANCEL_LINK, payment_id=payment.id, dedupe_key=f"cancel-link:{payment.id}")


def release_money_holds(visit, event, *, keep_coupon_use=False):
    """End the pending payments (the wallet part goes back to the wallet) and give the
    coupon use back (``keep_coupon_use``: kept, for a payment at the same price)."""
    for payment in visit.payments:
        if payment.status != PaymentStatus.PENDING:
            continue
        records.end(payment, PaymentStatus.EXPIRED, event)
        if payment.kind == WALLET:
            postings.release_wallet(visit, payment)
        elif payment.kind == LINK and payment.razorpay_link_id:
            cancel_link_at_gateway(payment)
    if not keep_coupon_use:
        coupons.give_back(visit)


def expire(visit, reason="hold expired", actor=None):
    """Never paid in time: items EXPIRED, claims freed, money holds released."""
    before = visit.status
    for item in visit.items:
        if item.status == BookingStatus.SCHEDULED:
            move(item, BookingStatus.EXPIRED)
            claims.release(item)
    release_money_holds(visit, "expired")
    refresh_status(visit)
    record(
        actor,
        "visit.expire",
        "visit",
        visit.id,
        before={"status": before},
        after={"status": visit.status, "reason": reason},
    )
    return visit


def abandon_checkout(visit, reason, actor=None, *, keep_price=False):
    """The visit changes while a checkout is pending (item removed, coupon changed, a link
    or desk payment replaces the order): end the pending payment and return to DRAFT. A
    payment still made on the old order is a late payment (docs/booking.md).
    ``keep_price``: the desk takes an open link's price (``prices.link_kept``): the link
    ends, its stored split and the coupon use it holds stay for the desk payment.
    The hold restarts only while it runs: an ended one stays ended, for the sweep to expire
    (restarting it held again the slots others were shown free, docs/booking.md)."""
    if visit.status != VisitStatus.PENDING_PAYMENT and not any(
        p.status == PaymentStatus.PENDING for p in visit.payments
    ):
        return
    release_money_holds(visit, "abandoned", keep_coupon_use=keep_price)
    for item in visit.items:
        if item.status == BookingStatus.SCHEDULED and not keep_price:
            item.discount_share = item.paid_amount = 0
            item.wallet_paid = item.gateway_paid = 0
    if not keep_price:
        visit.wallet_applied = 0
    if not is_hold_stale(visit):
        visit.hold_expires_at = utcnow() + hold_lifetime()
    refresh_status(visit)
    record(actor, "visit.checkout_abandoned", "visit", visit.id, after={"reason": reason})


def needs_attention(visit, reason):
    if visit.attention != reason:
        visit.attention = reason
        events.visit_needs_attention.send("booking", visit_id=visit.id, reason=reason)


def is_hold_stale(visit, now=None):
    now = now or utcnow()
    return (
        visit.status in OPEN_VISIT_STATUSES
        and visit.hold_expires_at is not None
        and visit.hold_expires_at <= now
    )


def expire_if_stale(visit_id, now=None):
    visit = lock_visit(visit_id)
    if visit is not None and is_hold_stale(visit, now):
        expire(visit)
        return True
    return False
