"""What the provider dashboard and the admin payouts screen read. Earnings and penalties
are read from the ledger (the provider's payable account), payouts from their table."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta

import sqlalchemy as sa

from portal.booking.models import IndividualBooking, Reschedule
from portal.catalog.models import INSTANT
from portal.config import policy
from portal.db import utcnow
from portal.domain.payouts import cycle_payable
from portal.domain.rates import INDIA_TZ, financial_year, financial_year_bounds, format_inr
from portal.domain.states import PayoutStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from portal.ledger.queries import account_history_page
from portal.payouts import models as m
from portal.payouts.common import current_fund_account, payable_balance


@dataclass
class Bar:
    label: str
    amount: int
    x: int
    y: int
    width: int
    height: int


def _payable_lines(provider_id):
    """(transaction, signed credit amount) on the provider's payable, newest first."""
    code = chart.provider_payable(provider_id)
    return (
        sa.select(LedgerTransaction, -LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.code == code)
    )


def earnings(provider_id, limit=50):
    """Per completed booking: ``[(booking, earning paise, posted_at)]``, newest first."""
    rows = db.session.execute(
        _payable_lines(provider_id)
        .where(LedgerTransaction.kind == "booking_completed")
        .order_by(LedgerTransaction.id.desc())
        .limit(limit)
    ).all()
    ids = [int(t.reference_id) for t, _a in rows if t.reference_id]
    bookings = (
        {
            b.id: b
            for b in db.session.scalars(
                sa.select(IndividualBooking).where(IndividualBooking.id.in_(ids))
            )
        }
        if ids
        else {}
    )
    return [(bookings.get(int(t.reference_id)), amount, t.created_at) for t, amount in rows]


def penalties(provider_id, limit=50):
    """Debits on the payable that are not payouts (cancellation penalties, adjustments)."""
    rows = db.session.execute(
        _payable_lines(provider_id)
        .where(
            ~LedgerTransaction.kind.startswith("payout"),
            LedgerTransaction.kind != "booking_completed",
            LedgerEntry.amount > 0,
        )
        .order_by(LedgerTransaction.id.desc())
        .limit(limit)
    ).all()
    return [(t, -amount) for t, amount in rows]


def _week_start(day):
    return day - timedelta(days=day.weekday())


def weekly_earnings(provider_id, weeks=12, now=None):
    """Earnings (completion credits) per IST week (Monday–Sunday), oldest first."""
    now = now or utcnow()
    this_week = _week_start(now.astimezone(INDIA_TZ).date())
    first = this_week - timedelta(weeks=weeks - 1)
    since = datetime.combine(first, time(0), INDIA_TZ)
    rows = db.session.execute(
        _payable_lines(provider_id).where(
            LedgerTransaction.kind == "booking_completed", LedgerTransaction.created_at >= since
        )
    ).all()
    totals = {first + timedelta(weeks=i): 0 for i in range(weeks)}
    for txn, amount in rows:
        week = _week_start(txn.created_at.astimezone(INDIA_TZ).date())
        if week in totals:
            totals[week] += amount
    return sorted(totals.items())


def chart_bars(series, width=600, height=160, gap=8):
    """SVG bar geometry for ``[(date, paise)]`` (presentation attributes only, no styles)."""
    if not series:
        return []
    top = max(amount for _d, amount in series) or 1
    step = width // len(series)
    bars = []
    for i, (day, amount) in enumerate(series):
        h = 0 if amount <= 0 else max(int(amount * (height - 20) / top), 2)
        bars.append(
            Bar(day.strftime("%d %b"), amount, i * step + gap // 2, height - 20 - h, step - gap, h)
        )
    return bars


def tds_this_year(provider_id, now=None):
    fy = financial_year(now or utcnow())
    total = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(m.Payout.tds), 0)).where(
            m.Payout.provider_id == provider_id,
            m.Payout.financial_year == fy,
            m.Payout.returned.is_(False),
        )
    )
    gross = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(m.Payout.gross), 0)).where(
            m.Payout.provider_id == provider_id,
            m.Payout.financial_year == fy,
            m.Payout.returned.is_(False),
        )
    )
    return fy, int(total or 0), int(gross or 0)


def payouts(provider_id=None, *, status=None, held=None, limit=100, offset=0):
    query = sa.select(m.Payout).order_by(m.Payout.id.desc())
    if provider_id is not None:
        query = query.where(m.Payout.provider_id == provider_id)
    if status == "GIVEN_UP":
        query = query.where(m.Payout.status == PayoutStatus.FAILED, m.Payout.returned.is_(True))
    elif status:
        query = query.where(m.Payout.status == status)
    if held is not None:
        query = query.where(m.Payout.held.is_(held))
    return db.session.scalars(query.limit(limit).offset(offset)).all()


def dashboard(provider):
    now = utcnow()
    balance = payable_balance(provider.id)
    fy, tds, fy_gross = tds_this_year(provider.id, now)
    series = weekly_earnings(provider.id, now=now)
    in_flight = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(m.Payout.net), 0)).where(
            m.Payout.provider_id == provider.id,
            m.Payout.returned.is_(False),
            m.Payout.status.in_(
                (PayoutStatus.QUEUED, PayoutStatus.PROCESSING, PayoutStatus.FAILED)
            ),
        )
    )
    carry = None
    if provider.payout_schedule != INSTANT:
        decision = cycle_payable(balance, policy=policy())
        if not decision.pay:
            carry = decision.message
    start, end = financial_year_bounds(fy)
    return {
        "balance": balance,
        "fy": fy,
        "fy_start": start,
        "fy_end": end,
        "tds": tds,
        "fy_gross": fy_gross,
        "in_flight": int(in_flight or 0),
        "earnings": earnings(provider.id),
        "penalties": penalties(provider.id),
        "weekly": series,
        "bars": chart_bars(series),
        "period_total": sum(a for _d, a in series),
        "payouts": payouts(provider.id, limit=50),
        "fund_account": current_fund_account(provider.id),
        "carry_message": carry,
        "threshold": policy().tds_rule_for(fy).threshold,
    }


@dataclass(frozen=True)
class StatementLine:
    """One movement of the payable, said plainly: where the money came from or went."""

    at: object
    what: str
    detail: str
    change: int  # paise; an earning is positive, a payout or penalty negative
    balance: int  # the payable after this line
    booking_id: int | None = None


def _booking_text(booking):
    if booking is None:
        return "Appointment"
    when = booking.start_at.astimezone(INDIA_TZ).strftime("%d %b %Y, %H:%M")
    return f"{booking.service.name} for {booking.visit.for_name}, {when}"


def _booking_in_memo(memo):
    # Penalties name their booking in the memo ("… booking 17"); the cancellation row is
    # the refunds capability's, which payouts does not read.
    word = (memo or "").rsplit("booking ", 1)
    tail = word[1].split()[0] if len(word) == 2 and word[1] else ""
    return int(tail) if tail.isdigit() else None


def payable_statement_page(provider_id, *, after=None, before=None, per_page=30):
    """Every movement of the provider's payable, newest first, with the balance after it
    (issue #16: every rupee of the payable traces to its appointment, penalty, fee or
    payout). Loads the page's bookings, reschedules and payouts in three queries."""
    page = account_history_page(
        chart.provider_payable(provider_id), after=after, before=before, per_page=per_page
    )
    refs = {"booking": set(), "reschedule": set(), "payout": set()}
    for line in page.items:
        if line.reference_type in refs and (line.reference_id or "").isdigit():
            refs[line.reference_type].add(int(line.reference_id))
        if line.kind == "provider_penalty" and _booking_in_memo(line.memo):
            refs["booking"].add(_booking_in_memo(line.memo))
    reschedules = _by_id(Reschedule, refs["reschedule"])
    refs["booking"] |= {r.booking_id for r in reschedules.values()}
    bookings = _by_id(IndividualBooking, refs["booking"])
    payouts_by_id = _by_id(m.Payout, refs["payout"])
    items = []
    for line in page.items:
        ref = int(line.reference_id) if (line.reference_id or "").isdigit() else None
        what, detail, booking_id = _describe(line, ref, bookings, reschedules, payouts_by_id)
        items.append(StatementLine(line.at, what, detail, line.change, line.balance, booking_id))
    return replace(page, items=items)


def _by_id(model, ids):
    if not ids:
        return {}
    return {row.id: row for row in db.session.scalars(sa.select(model).where(model.id.in_(ids)))}


def _describe(line, ref, bookings, reschedules, payouts_by_id):
    """(what, detail, booking id) for one payable movement."""
    kind = line.kind
    if kind == "booking_completed":
        booking = bookings.get(ref)
        return "Earning", f"{_booking_text(booking)} (fee less commission)", ref
    if kind == "reschedule_fee":
        resched = reschedules.get(ref)
        booking = bookings.get(resched.booking_id) if resched else None
        return (
            "Reschedule fee",
            f"Your share of the fee to move {_booking_text(booking)}",
            booking.id if booking else None,
        )
    if kind == "provider_penalty":
        booking_id = _booking_in_memo(line.memo)
        return (
            "Cancellation penalty",
            f"You cancelled {_booking_text(bookings.get(booking_id))}",
            booking_id,
        )
    payout = payouts_by_id.get(ref)
    if kind == "payout_initiated" and payout is not None:
        detail = f"Payout #{payout.id}: {format_inr(payout.net)} to your bank"
        if payout.tds:
            detail += f" + {format_inr(payout.tds)} TDS ({payout.tds_section or '194J'})"
        return "Payout", detail, None
    if kind in ("payout_failed", "payout_reversed") and payout is not None:
        return "Payout returned", f"Payout #{payout.id} did not reach your bank", None
    return kind.replace("_", " ").capitalize(), line.memo or "", None
