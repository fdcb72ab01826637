"""The operations dashboard's figures: aggregate queries only, each on an index.

Windows are clinic days (``CLINIC_TZ``): "today" from local midnight, "7 days" and "30 days"
from local midnight 6 and 29 days ago. One grouped query per measure reads the last 30
clinic days day by day; the three windows and the daily charts are sums of those rows in
Python, so each measure costs one indexed range scan:

* bookings: individual bookings by ``confirmed_at`` (``ix_bookings_confirmed_at``);
* money in: successful gateway and desk payments by ``paid_at`` (``ix_payments_paid_at``;
  wallet parts are money the clinic already held; a capture that paid for nothing is
  one, its money in the wallet), and reschedule fees paid through Razorpay or at the
  desk by ``done_at``, or when one went to the wallet by its credit's posting
  (``ix_ledger_transactions_created_at``), and fee payments its reschedule does not
  record by ``captured_at`` (one statement);
* refunds: processed refunds to the patient's card or account (Razorpay: cash out, the
  basis of "money in" beside it and of the console's refunds) by ``processed_at``
  (``ix_refunds_processed_at``), and in the same statement those credited to the wallet,
  their own figure ("to wallets": no money leaves the business), and wallet balances paid
  out in cash at the desk and by bank transfer by ``applied_at`` (cash out, a figure each);
* payouts: processed payouts (net) by ``processed_at`` (``ix_payouts_processed_at``),
  whatever happened to them later, less those the bank sent back by the reversal's
  ledger posting (its bank line: the money's return), as the transactions console;
* failed payments: failed attempts on the payment timeline by ``at``
  (``ix_payment_attempts_status_at``).

Bookings per month (the case study's "500+ bookings/month") cover the last 12 months; the
months before the current one no longer change (``confirmed_at`` is written once), so each
process keeps them for ``MONTHS_TTL`` and counts only the current month live.

The outcome figures of the case study (its "Results & Impact"): refund turnaround p50/p95
(created → processed, gateway refunds processed in the last 30 days: a wallet credit is
instant and would hide how long a Razorpay refund takes), the share of payouts processed
in the last 30 days without a manual step (no administrator's action in the audit log: hold,
release, retry, pay now), bookings per month, and the discrepancy rate (open discrepancies ÷
items reconciled, from the reconciliation package through :mod:`portal.dashboard.sources`).
"""

from __future__ import annotations

import threading
import time as _time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from flask import current_app

from portal.approvals.sources import SOURCES
from portal.audit.models import AuditEntry
from portal.booking.models import (
    PAY_DESK,
    PAY_GATEWAY,
    FeeCapture,
    IndividualBooking,
    Reschedule,
)
from portal.booking.reschedule_payment import FEE_CREDIT_KEY, UNAPPLIED
from portal.dashboard import sources
from portal.db import UTCDateTime, utcnow
from portal.domain.states import (
    AdjustmentStatus,
    PaymentStatus,
    PayoutStatus,
    RefundStatus,
    RescheduleStatus,
)
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from portal.payments.models import DESK, LINK, ORDER, Payment, PaymentAttempt
from portal.payouts.models import REVERSED_KIND, Payout
from portal.refunds.models import GATEWAY, WALLET, Refund
from portal.wallet.models import BANK_PAYOUT, CASH_PAYOUT, PAYOUTS, WalletAdjustment

DAYS = 30
WINDOWS = (("today", 1), ("7 days", 7), ("30 days", 30))
MONTHS = 12
MONTHS_TTL = 3600  # seconds a process keeps the closed months' booking counts


@dataclass
class Series:
    """One measure per clinic day (oldest first), with counts and amounts."""

    days: list[date]
    count: list[int]
    amount: list[int]

    def window(self, n):
        return sum(self.count[-n:]), sum(self.amount[-n:])


@dataclass
class Dashboard:
    as_of: datetime
    days: list[date]
    series: dict[str, Series]
    pending_approvals: dict[str, int]
    open_discrepancies: int | None
    discrepancy_rate: float | None
    refund_p50: float | None  # seconds
    refund_p95: float | None
    refunds_measured: int
    payouts_automatic: int
    payouts_processed: int
    months: list[tuple[date, int]] = field(default_factory=list)

    @property
    def automatic_share(self):
        if not self.payouts_processed:
            return None
        return self.payouts_automatic / self.payouts_processed

    def windows(self):
        """[(label, {measure: (count, amount)})] for today, 7 and 30 days."""
        return [
            (label, {name: s.window(n) for name, s in self.series.items()}) for label, n in WINDOWS
        ]


def _local_day_start(day):
    return datetime.combine(day, time(0), tzinfo=CLINIC_TZ)


def _day_bucket(column, since):
    """The clinic day of a timestamp, as something that maps back to a day index: on
    PostgreSQL the start of its day (``date_bin`` from ``since``, a local midnight; the
    clinic zone keeps no daylight saving), on SQLite the whole days since ``since``.
    Both are cheap per row, unlike converting every row to local text."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.func.date_bin(
            sa.text("interval '1 day'"), column, sa.bindparam("since", since, type_=UTCDateTime)
        )
    # SQLite keeps naive UTC text; julianday() reads it as UTC.
    start = since.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return sa.cast(sa.func.julianday(column) - sa.func.julianday(start), sa.Integer)


def _day_index(bucket, since):
    if isinstance(bucket, datetime):
        return (bucket - since).days
    return int(bucket)


def _daily(column, amount, since, *where):
    """{day index: (count, amount)} since ``since``."""
    day = _day_bucket(column, since).label("day")
    amount_sum = sa.func.coalesce(sa.func.sum(amount), 0) if amount is not None else sa.literal(0)
    rows = db.session.execute(
        sa.select(day, sa.func.count().label("n"), amount_sum.label("amount"))
        .where(column >= since, *where)
        .group_by(day)
    ).all()
    return {_day_index(r.day, since): (int(r.n), int(r.amount)) for r in rows}


def _money_in(since, kinds):
    """``_daily`` of the money in, in one statement: successful payments by ``paid_at``
    (a capture of the wrong amount too: a row of its own whose money went to the wallet,
    though it came in all the same); and reschedule fees paid through Razorpay or at the
    desk (the booking moved, or Razorpay captured the fee and it went to the wallet: by
    that credit), and fee payments recorded on their own (``FeeCapture``: the wrong
    amount, a second payment) by their capture, as the transactions console counts
    them."""
    paid = sa.select(
        _day_bucket(Payment.paid_at, since).label("day"),
        sa.func.coalesce(Payment.captured_amount, Payment.amount).label("amount"),
    ).where(
        Payment.paid_at >= since,
        Payment.status == PaymentStatus.SUCCESSFUL,
        Payment.kind.in_(kinds),
    )
    # A fee is money in when the booking moved (by ``done_at``), or when Razorpay captured
    # it and it went to the wallet (slot gone, paid after the request ended: by that
    # credit's posting, found by the ledger's indexed time and kind), as the console and
    # reconciliation date it.
    moved = sa.select(
        _day_bucket(Reschedule.done_at, since).label("day"),
        Reschedule.total.label("amount"),
    ).where(
        Reschedule.done_at >= since,
        Reschedule.total > 0,
        sa.or_(
            sa.and_(
                Reschedule.status == RescheduleStatus.DONE,
                Reschedule.pay_with.in_((PAY_GATEWAY, PAY_DESK)),
            ),
            sa.and_(
                Reschedule.pay_with == PAY_GATEWAY, Reschedule.razorpay_payment_id.is_not(None)
            ),
        ),
    )
    credited = (
        sa.select(
            _day_bucket(LedgerTransaction.created_at, since).label("day"),
            Reschedule.total.label("amount"),
        )
        # the credit of the payment the row records (not a repeated one), by its key
        .join(Reschedule, LedgerTransaction.idempotency_key == FEE_CREDIT_KEY)
        .where(
            LedgerTransaction.created_at >= since,
            LedgerTransaction.kind == UNAPPLIED,
            LedgerTransaction.reference_type == "reschedule",
            Reschedule.done_at.is_(None),
            Reschedule.total > 0,
            Reschedule.pay_with == PAY_GATEWAY,
        )
    )
    # A fee payment its reschedule does not record (the wrong amount, a second one): its
    # own record, by its capture (``ix_reschedule_fee_captures_captured_at``).
    captured = sa.select(
        _day_bucket(FeeCapture.captured_at, since).label("day"),
        FeeCapture.amount.label("amount"),
    ).where(FeeCapture.captured_at >= since)
    both = sa.union_all(paid, moved, credited, captured).subquery("money_in")
    rows = db.session.execute(
        sa.select(
            both.c.day, sa.func.count(), sa.func.coalesce(sa.func.sum(both.c.amount), 0)
        ).group_by(both.c.day)
    ).all()
    return {_day_index(day, since): (int(n), int(amount)) for day, n, amount in rows}


def _payouts(since):
    """``_daily`` of the payouts, as the transactions console counts them, in one
    statement: each processed payout (net) on the day it was processed, whatever happened
    to it later, and each one the bank sent back taken back (its net, negative, no count)
    on the day the money came back: the ledger's reversal posting and what it put back in
    the bank (``ix_ledger_transactions_created_at``; a payout reversed before it was
    processed put nothing back there, and counted nowhere). Review finding: the payouts
    were those PROCESSED now, so a reversal took a payout out of a day long gone."""
    processed = sa.select(
        _day_bucket(Payout.processed_at, since).label("day"),
        sa.literal(1).label("n"),
        Payout.net.label("amount"),
    ).where(Payout.processed_at >= since)
    returned = (
        sa.select(
            _day_bucket(LedgerTransaction.created_at, since).label("day"),
            sa.literal(0).label("n"),
            (-LedgerEntry.amount).label("amount"),
        )
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerTransaction.created_at >= since,
            LedgerTransaction.kind == REVERSED_KIND,
            LedgerAccount.code == chart.BANK,
        )
    )
    both = sa.union_all(processed, returned).subquery("payouts")
    rows = db.session.execute(
        sa.select(
            both.c.day, sa.func.sum(both.c.n), sa.func.coalesce(sa.func.sum(both.c.amount), 0)
        ).group_by(both.c.day)
    ).all()
    return {_day_index(day, since): (int(n), int(amount)) for day, n, amount in rows}


def _refunds(since):
    """(gateway refunds, wallet refunds, cash paid out at the desk, paid out by bank
    transfer): ``_daily`` of each, in one statement: refunds processed since ``since``, and
    wallet balances paid out to patients (``portal.wallet.cash``, ``portal.wallet.bank``),
    applied since then (``ix_wallet_adjustments_kind_applied``), by their kind: cash out,
    as a desk payment in "money in" is cash in (review finding: the console's net and this
    page kept it)."""
    refunds = sa.select(
        _day_bucket(Refund.processed_at, since).label("day"),
        Refund.destination.label("destination"),
        Refund.amount.label("amount"),
    ).where(Refund.processed_at >= since, Refund.status == RefundStatus.PROCESSED)
    paid_out = sa.select(
        _day_bucket(WalletAdjustment.applied_at, since).label("day"),
        WalletAdjustment.kind.label("destination"),
        (-WalletAdjustment.amount).label("amount"),
    ).where(
        WalletAdjustment.kind.in_(PAYOUTS),
        WalletAdjustment.applied_at >= since,
        WalletAdjustment.status == AdjustmentStatus.APPLIED,
    )
    both = sa.union_all(refunds, paid_out).subquery("money_back")
    rows = db.session.execute(
        sa.select(
            both.c.day,
            both.c.destination,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(both.c.amount), 0),
        ).group_by(both.c.day, both.c.destination)
    ).all()
    out = {GATEWAY: {}, WALLET: {}, CASH_PAYOUT: {}, BANK_PAYOUT: {}}
    for bucket, destination, n, amount in rows:
        out[destination][_day_index(bucket, since)] = (int(n), int(amount))
    return out[GATEWAY], out[WALLET], out[CASH_PAYOUT], out[BANK_PAYOUT]


def _series(days, data):
    return Series(
        days,
        [data.get(i, (0, 0))[0] for i in range(len(days))],
        [data.get(i, (0, 0))[1] for i in range(len(days))],
    )


def _percentiles(since):
    """(p50, p95, how many) of refund turnaround in seconds, gateway refunds processed
    since (a wallet refund is credited at once: its 0 s would hide the patients' wait)."""
    seconds_expr = None
    where = (
        Refund.status == RefundStatus.PROCESSED,
        Refund.destination == GATEWAY,
        Refund.outside_refund_id.is_(None),  # a settled part waited for no one (its 0 s)
        Refund.processed_at >= since,
        Refund.processed_at.is_not(None),
    )
    if db.session.get_bind().dialect.name == "postgresql":
        seconds_expr = sa.func.extract("epoch", Refund.processed_at - Refund.created_at)
        row = db.session.execute(
            sa.select(
                sa.func.percentile_cont(0.5).within_group(seconds_expr),
                sa.func.percentile_cont(0.95).within_group(seconds_expr),
                sa.func.count(),
            ).where(*where)
        ).one()
        return (
            None if row[0] is None else float(row[0]),
            None if row[1] is None else float(row[1]),
            int(row[2]),
        )
    pairs = db.session.execute(sa.select(Refund.created_at, Refund.processed_at).where(*where))
    values = sorted((done - made).total_seconds() for made, done in pairs)
    if not values:
        return None, None, 0
    return _quantile(values, 0.5), _quantile(values, 0.95), len(values)


def _quantile(ordered, q):
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# An administrator's step on a payout (portal/payouts/admin.py): hold, release, retry now,
# pay now (``payout.created`` by an admin), "Mark as failed (not made at RazorpayX)".
MANUAL_PAYOUT_ACTIONS = (
    "payout.hold",
    "payout.release",
    "payout.admin_retry",
    "payout.created",
    "payout.mark_failed",
)


def _payout_automation(since):
    """(processed without an administrator's step, processed) since ``since``."""
    manual = (
        sa.select(AuditEntry.id)
        .where(
            AuditEntry.object_type == "payout",
            AuditEntry.object_id == sa.cast(Payout.id, sa.String),
            AuditEntry.actor_id.is_not(None),
            AuditEntry.action.in_(MANUAL_PAYOUT_ACTIONS),
        )
        .exists()
    )
    row = db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((manual, 0), else_=1)), 0),
        ).where(Payout.status == PayoutStatus.PROCESSED, Payout.processed_at >= since)
    ).one()
    return int(row[1]), int(row[0])


def _month_start(day, back=0):
    year, month = day.year, day.month - back
    while month <= 0:
        month += 12
        year -= 1
    return date(year, month, 1)


class _MonthCache:
    def __init__(self):
        self.lock = threading.Lock()
        self.key = None
        self.value = None
        self.at = 0.0


def _closed_months(this_month):
    """Confirmed bookings per closed month (the 11 before this one), kept per process."""
    cache = current_app.extensions.setdefault("dashboard_months", _MonthCache())
    now = _time.monotonic()
    with cache.lock:
        if cache.key == this_month and now - cache.at < MONTHS_TTL:
            return cache.value
    starts = [_month_start(this_month, back) for back in range(MONTHS - 1, -1, -1)]
    bounds = [_local_day_start(m) for m in starts]
    column = IndividualBooking.confirmed_at
    # One range scan of the index, one filtered count per month.
    counts = db.session.execute(
        sa.select(
            *(
                sa.func.count().filter(column >= lo, column < hi)
                for lo, hi in zip(bounds, bounds[1:])
            )
        ).where(column >= bounds[0], column < bounds[-1])
    ).one()
    value = [(m, int(n)) for m, n in zip(starts, counts)]
    with cache.lock:
        cache.key, cache.value, cache.at = this_month, value, now
    return value


def forget_months():
    current_app.extensions.pop("dashboard_months", None)


def pending_approvals():
    """What waits for a second administrator, by kind (the approvals queue's sources)."""
    u = sa.union_all(*(source.select() for source in SOURCES)).subquery("approvals")
    rows = db.session.execute(
        sa.select(u.c.kind, sa.func.count()).where(u.c.pending.is_(True)).group_by(u.c.kind)
    ).all()
    counts = dict(rows)
    return {source.label: int(counts.get(source.kind, 0)) for source in SOURCES}


def dashboard(now=None) -> Dashboard:
    now = now or utcnow()
    today = now.astimezone(CLINIC_TZ).date()
    days = [today - timedelta(days=n) for n in range(DAYS - 1, -1, -1)]
    since = _local_day_start(days[0])
    gateway_kinds = (ORDER, LINK, DESK)
    refunded, to_wallets, cash_paid, bank_paid = _refunds(since)
    this_month = _month_start(today)
    # The bookings' days from this month's first when it is before the series' (on a 31st):
    # this month's count from the same statement, the page's cost the same every day.
    book_from = min(days[0], this_month)
    booked = _daily(IndividualBooking.confirmed_at, None, _local_day_start(book_from))
    shift = (days[0] - book_from).days
    series = {
        "bookings": _series(days, {i - shift: v for i, v in booked.items() if i >= shift}),
        "money in": _series(days, _money_in(since, gateway_kinds)),
        # Cash out, as "money in" is cash in; wallet credits beside it, their own figure.
        "refunds": _series(days, refunded),
        "wallet refunds": _series(days, to_wallets),
        "cash paid out": _series(days, cash_paid),
        "bank paid out": _series(days, bank_paid),
        "payouts": _series(days, _payouts(since)),
        "failed payments": _series(
            days,
            _daily(PaymentAttempt.at, None, since, PaymentAttempt.status == PaymentStatus.FAILED),
        ),
    }
    p50, p95, measured = _percentiles(since)
    automatic, processed = _payout_automation(since)
    this_month_count = sum(
        n for i, (n, _) in booked.items() if book_from + timedelta(days=i) >= this_month
    )
    months = _closed_months(this_month) + [(this_month, this_month_count)]
    discrepancies, rate = sources.discrepancies(since)
    return Dashboard(
        as_of=now,
        days=days,
        series=series,
        pending_approvals=pending_approvals(),
        open_discrepancies=discrepancies,
        discrepancy_rate=rate,
        refund_p50=p50,
        refund_p95=p95,
        refunds_measured=measured,
        payouts_automatic=automatic,
        payouts_processed=processed,
        months=months,
    )
