"""The operations desk's reads: the appointments list (every filter of the appointments
seed, keyset pages, a constant number of queries per page) and the payments monitor.

A row is a visit. Item-level filters (date range, clinic, provider, service type) hold for
one and the same appointment of the visit (one EXISTS). The visit's payment status is its
current payment's (``current_payment``; ``NONE``: none)."""

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import aliased, joinedload, selectinload

from portal.accounts.models import Dependent, User
from portal.booking import attention
from portal.booking.models import IndividualBooking, MasterBooking, booking_providers
from portal.catalog.models import Clinic, Service
from portal.config import policy
from portal.db import contains_text, utcnow
from portal.domain.next_action import next_action
from portal.domain.states import PaymentStatus, VisitStatus
from portal.domain.timezone import CLINIC_TZ
from portal.pagination import Order, keyset_page
from portal.payments import records
from portal.payments.models import WALLET, Payment

NO_PAYMENT = "NONE"
PAYMENT_FILTERS = (*tuple(PaymentStatus), NO_PAYMENT)

VISIT_ORDER = (
    Order(MasterBooking.created_at, descending=True),
    Order(MasterBooking.id, descending=True),
)
PAYMENT_ORDER = (Order(Payment.created_at), Order(Payment.id))

# What a row shows, loaded with the page: items (clinic, service, providers), people,
# payments with their attempts (for the next action).
ROW = (
    # (a clinic's opening hours are not shown: not loaded)
    selectinload(MasterBooking.items).joinedload(IndividualBooking.clinic).lazyload(Clinic.hours),
    selectinload(MasterBooking.items).joinedload(IndividualBooking.service),
    selectinload(MasterBooking.items).selectinload(IndividualBooking.providers),
    selectinload(MasterBooking.payments).selectinload(Payment.attempts),
    joinedload(MasterBooking.patient),
    joinedload(MasterBooking.dependent),
)


@dataclass(frozen=True)
class VisitFilter:
    """What the list is filtered by; every field optional. Dates are clinic-time days,
    inclusive; they apply to the appointments' start."""

    date_from: date | None = None
    date_to: date | None = None
    clinic_id: int | None = None
    provider_id: int | None = None
    service_kind: str | None = None
    status: str | None = None
    payment_status: str | None = None
    needs_attention: bool | None = None
    search: str | None = None
    # The visits a reference searched for belongs to (``transactions.references``, found
    # by the web layer, which sees the refunds and payouts too): instead of ``search``.
    visit_ids: tuple[int, ...] | None = None


def _day_start(day):
    return datetime.combine(day, time(0), tzinfo=CLINIC_TZ)


def _item_clause(f):
    conds = []
    if f.date_from:
        conds.append(IndividualBooking.start_at >= _day_start(f.date_from))
    if f.date_to:
        conds.append(IndividualBooking.start_at < _day_start(f.date_to + timedelta(days=1)))
    if f.clinic_id:
        conds.append(IndividualBooking.clinic_id == f.clinic_id)
    if f.provider_id:
        conds.append(
            IndividualBooking.id.in_(
                sa.select(booking_providers.c.booking_id).where(
                    booking_providers.c.provider_id == f.provider_id
                )
            )
        )
    if f.service_kind:
        conds.append(
            IndividualBooking.service_id.in_(
                sa.select(Service.id).where(Service.kind == f.service_kind)
            )
        )
    if not conds:
        return None
    return (
        sa.select(IndividualBooking.id)
        .where(IndividualBooking.master_id == MasterBooking.id, *conds)
        .exists()
    )


def _counts(payment):
    """Whether ``payment`` (a Payment row, or the class or an alias of it in a query) can be
    the visit's current payment (``current_payment``)."""
    return sa.and_(
        sa.or_(payment.kind != WALLET, payment.status == PaymentStatus.SUCCESSFUL),
        payment.unapplied.is_(False),  # a capture that paid for nothing never is
    )


def _payment_clause(status):
    """The visit's current payment is in ``status`` (``NONE``: it has none)."""
    if status == NO_PAYMENT:
        return ~(
            sa.select(Payment.id)
            .where(Payment.master_id == MasterBooking.id, _counts(Payment))
            .exists()
        )
    newer = aliased(Payment)
    return MasterBooking.id.in_(
        sa.select(Payment.master_id).where(
            Payment.status == status,
            _counts(Payment),
            ~sa.select(newer.id)
            .where(newer.master_id == Payment.master_id, _counts(newer), newer.id > Payment.id)
            .exists(),
        )
    )


_DIGITS = re.compile(r"\d")
_PHONE_LIKE = re.compile(r"[\d\s+().-]+")
_NUMBER_LIKE = re.compile(r"v\d+")


def _search_clause(text):
    """Visit number (exact), account holder (name, email, mobile), the dependent's name.
    A search of digits only (4 or more; spaces, dashes, brackets and + allowed) is also
    looked for in mobile numbers. One indexed branch each (patient, dependent, number):
    the visits found are few, whatever the table's size."""
    people = [contains_text(User.name, text), contains_text(User.email, text)]
    digits = "".join(_DIGITS.findall(text))
    if len(digits) >= 4 and _PHONE_LIKE.fullmatch(text):
        people.append(User.phone.like(f"%{digits[-10:]}%"))
    visit = aliased(MasterBooking)
    branches = [
        sa.select(visit.id).where(visit.patient_id.in_(sa.select(User.id).where(sa.or_(*people)))),
        sa.select(visit.id).where(
            visit.dependent_id.in_(
                sa.select(Dependent.id).where(contains_text(Dependent.name, text))
            )
        ),
    ]
    if _NUMBER_LIKE.fullmatch(text):
        branches.append(sa.select(visit.id).where(visit.number == text.upper()))
    return MasterBooking.id.in_(sa.union(*branches))


def filtered(f):
    query = sa.select(MasterBooking)
    items = _item_clause(f)
    if items is not None:
        query = query.where(items)
    if f.status:
        query = query.where(MasterBooking.status == f.status)
    if f.payment_status:
        query = query.where(_payment_clause(f.payment_status))
    if f.needs_attention is not None:
        clause = attention.attention_clause(utcnow(), policy().attention_window)
        query = query.where(clause if f.needs_attention else sa.not_(clause))
    if f.visit_ids is not None:
        query = query.where(MasterBooking.id.in_(f.visit_ids))
    text = " ".join((f.search or "").split()).lower()
    if text:
        query = query.where(_search_clause(text))
    return query


def appointments_page(f, *, after=None, before=None, per_page=20):
    """A keyset page of visits matching ``f``, newest first, with the rows' extras in
    ``page.extra``: ``total`` (exact when everything fits on this one page, else None:
    counting the matches of a filter over a million visits costs more than the page
    itself, so the list says "more" instead), ``flags`` (open flag rows per visit)."""
    page = keyset_page(
        filtered(f), VISIT_ORDER, after=after, before=before, per_page=per_page, options=ROW
    )
    alone = not page.has_next and not page.has_prev
    page.extra["total"] = len(page.items) if alone else None
    page.extra["flags"] = attention.open_flags_by_visit(v.id for v in page.items)
    return page


# --- what a row shows (computed from what the page loaded) -----------------------------


def current_payment(visit):
    """The payment that says where the visit's money stands (None: there is none): its
    newest, a wallet part counting only once used, never a capture that paid for nothing
    (its money went to the wallet: the order it came on may still wait for the right
    amount). A wallet part reserved (PENDING) or given back (EXPIRED) sits beside the
    order whose status tells; used (SUCCESSFUL), it paid for the confirmed visit, alone
    when the wallet paid it all. The same rule as ``_counts``, in Python for the rows
    already loaded."""
    for p in reversed(visit.payments):
        if (p.kind != WALLET or p.status == PaymentStatus.SUCCESSFUL) and not (
            records.paid_for_nothing(p)
        ):
            return p
    return None


def payment_status(visit):
    payment = current_payment(visit)
    return payment.status if payment else NO_PAYMENT


def hint(visit, now=None):
    """The next action about the visit's money (``portal.domain.next_action``)."""
    if visit.status == VisitStatus.CANCELLED:
        return next_action(None, now=now or utcnow(), cancelled=True)
    payment = current_payment(visit)
    if payment is None:
        # No payment at all: a draft's is still to be asked for; a visit confirmed without
        # one had nothing to pay (a coupon took it all).
        return next_action(None, now=now or utcnow(), confirmed=visit.confirmed_at is not None)
    return payment_hint(payment, now)


def payment_hint(payment, now=None):
    return next_action(
        payment.status,
        now=now or utcnow(),
        expires_at=payment.expires_at,
        attempts=payment.attempt_count,
        failed_attempts=payment.failed_attempts,
        policy=policy(),
    )


@dataclass(frozen=True)
class Figures:
    fee: int
    platform_fee: int
    gst: int
    total: int
    paid: int
    refunded: int
    net: int  # paid less refunded: what the clinic holds for the visit
    due: int  # the visit page's paid/refunded/due come from refunds.queries.visit_money


def figures(visit):
    items = visit.live_items
    fee = sum(i.fee for i in items)
    platform = sum(i.platform_fee for i in items)
    gst = sum(i.gst for i in items)
    paid = sum(i.paid_amount for i in visit.items) if not visit.is_open else 0
    refunded = sum(i.refunded_amount for i in visit.items)
    return Figures(
        fee, platform, gst, fee + platform + gst, paid, refunded, paid - refunded, visit.total_due
    )


# --- the payments monitor ----------------------------------------------------------------

MONITORED = (PaymentStatus.PENDING, PaymentStatus.FAILED, PaymentStatus.EXPIRED)


def payments_page(*, status=None, after=None, before=None, per_page=20):
    """Payments that need watching across all visits, oldest first: each visit's current
    payment (``current_payment``: never a wallet part, whose status is not among these)
    when it is pending or failed, or expired while its visit is still flagged (a link
    that ran out and nobody has dealt with). ``status`` narrows to one of them."""
    statuses = [status] if status in MONITORED else list(MONITORED)
    newest = sa.select(sa.func.max(Payment.id)).where(
        Payment.master_id == MasterBooking.id, _counts(Payment)
    )
    query = (
        sa.select(Payment)
        .join(MasterBooking, Payment.master_id == MasterBooking.id)
        .where(
            Payment.status.in_(statuses),
            Payment.kind != WALLET,
            Payment.id == newest.correlate(MasterBooking).scalar_subquery(),
            sa.or_(Payment.status != PaymentStatus.EXPIRED, MasterBooking.attention.is_not(None)),
        )
    )
    return keyset_page(
        query,
        PAYMENT_ORDER,
        after=after,
        before=before,
        per_page=per_page,
        options=(
            selectinload(Payment.attempts),
            joinedload(Payment.visit).joinedload(MasterBooking.patient),
            joinedload(Payment.visit).joinedload(MasterBooking.dependent),
            joinedload(Payment.visit).selectinload(MasterBooking.items),
        ),
    )


def attempt_error(attempt):
    """The gateway's words for a failed attempt (None when it said nothing)."""
    detail = attempt.detail or {}
    if not isinstance(detail, dict):
        return None
    return detail.get("error_description") or detail.get("error_code") or detail.get("reason")


def last_error(payment):
    failed = [a for a in payment.attempts if a.status == PaymentStatus.FAILED]
    return (attempt_error(failed[-1]) or "Failed") if failed else None


def timeline(visit):
    """The payment timeline of a visit, oldest first: one row per attempt with its time,
    status, amount, gateway reference, error and the retry count so far (failures of that
    payment up to and including this entry)."""
    rows = []
    for payment in visit.payments:
        failures = 0
        for attempt in payment.attempts:
            if attempt.status == PaymentStatus.FAILED:
                failures += 1
            rows.append(
                TimelineRow(
                    payment_id=payment.id,
                    at=attempt.at,
                    event=attempt.event,
                    status=attempt.status,
                    amount=payment.amount,
                    kind=payment.kind,
                    reference=attempt.razorpay_payment_id
                    or payment.razorpay_link_id
                    or payment.razorpay_order_id
                    or payment.receipt_no,
                    error=attempt_error(attempt)
                    if attempt.status == PaymentStatus.FAILED
                    else None,
                    retries=failures,
                    sort=(attempt.at, attempt.id),
                )
            )
    return sorted(rows, key=lambda r: r.sort)


@dataclass(frozen=True)
class TimelineRow:
    payment_id: int
    at: datetime
    event: str
    status: str
    amount: int
    kind: str
    reference: str | None
    error: str | None
    retries: int
    sort: tuple
