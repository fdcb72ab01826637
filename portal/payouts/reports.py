"""What the provider dashboard and the admin payouts screen read. Earnings and penalties
are read from the ledger (the provider's payable account), payouts from their table."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.orm import joinedload, selectinload

from portal.booking.models import IndividualBooking, MasterBooking, Reschedule
from portal.catalog.models import INSTANT, Provider
from portal.config import policy
from portal.db import utcnow
from portal.domain.ids import is_digits
from portal.domain.payouts import (
    BELOW_GATEWAY_MINIMUM,
    GATEWAY_MINIMUM_PAYOUT,
    cycle_payable,
    over_threshold,
    rate_for_payee,
)
from portal.domain.pricing import team_shares
from portal.domain.rates import INDIA_TZ, financial_year, financial_year_bounds, format_inr
from portal.domain.states import PayoutStatus
from portal.domain.text import DateText, Text
from portal.domain.timezone import CLINIC_TIMEZONE
from portal.extensions import db
from portal.i18n import N_
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from portal.ledger.queries import account_history_page
from portal.payouts import models as m
from portal.payouts.common import (
    current_fund_account,
    payable_balance,
    payee_key,
    payout_fund_account,
    pays_earlier_account,
    same_payee,
    tds_note,
    tds_section,
)
from portal.payouts.completion import fee_shares
from portal.payouts.create import next_payout
from portal.payouts.runs import next_run_day
from portal.payouts.status import held_back


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


# What a line names of its appointment (``_booking_text``, the earnings' service), read
# with the bookings in their one statement: lazily, each booking added its visit and the
# patient's name (a statement per appointment on the page).
NAMED_BOOKING = (
    joinedload(IndividualBooking.service),
    joinedload(IndividualBooking.clinic),
    joinedload(IndividualBooking.visit).joinedload(MasterBooking.patient),
    joinedload(IndividualBooking.visit).joinedload(MasterBooking.dependent),
)

# What the provider earns, as the payable's credits: a completion's share of the fee, and
# a reschedule fee's share of the penalty (POLICY.md: "The penalty, less commission, goes
# to the provider"), credited when the fee is paid. Both count on the earnings page.
EARNING_KINDS = ("booking_completed", "reschedule_fee")


@dataclass(frozen=True)
class Earning:
    """One earning of the provider: ``share`` their share of what was charged (a
    completion's fee F, or a reschedule's penalty) before commission (None: its booking
    not found), ``amount`` what the payable was credited, ``fee_share`` True for a
    reschedule fee's share (said "Reschedule fee share" on the page)."""

    booking: object
    share: int | None
    amount: int
    at: datetime
    fee_share: bool = False


def earnings(provider_id, limit=50):
    """The provider's earnings (``EARNING_KINDS``), newest first: ``[Earning]``. Their own
    share of a team's fee (``completion.fee_shares``) or penalty (split as the fee's
    posting splits it, ``pricing.team_shares``), which their earning is that share less
    their commission. One statement for the credits with their reschedules (joined), one
    for the bookings and their providers: the same for any number of rows."""
    rows = db.session.execute(
        _payable_lines(provider_id)
        .add_columns(Reschedule.booking_id, Reschedule.penalty)
        .outerjoin(
            Reschedule,
            sa.and_(
                LedgerTransaction.reference_type == "reschedule",
                LedgerTransaction.reference_id == sa.cast(Reschedule.id, sa.String),
            ),
        )
        .where(LedgerTransaction.kind.in_(EARNING_KINDS))
        .order_by(LedgerTransaction.id.desc())
        .limit(limit)
    ).all()

    def booking_id(t, moved_id):
        if t.kind == "reschedule_fee":
            return moved_id
        return int(t.reference_id) if is_digits(t.reference_id) else None

    ids = {booking_id(t, moved) for t, _a, moved, _p in rows} - {None}
    bookings = (
        {
            b.id: b
            for b in db.session.scalars(
                sa.select(IndividualBooking)
                .where(IndividualBooking.id.in_(ids))
                .options(
                    selectinload(IndividualBooking.providers).load_only(Provider.id),
                    *NAMED_BOOKING,
                )
            )
        }
        if ids
        else {}
    )

    def share(booking, penalty):
        if booking is None:
            return None
        if penalty is None:
            return dict((p.id, s) for p, s in fee_shares(booking)).get(provider_id)
        split = team_shares(int(penalty), list(booking.providers))
        return dict((p.id, s) for p, s in split).get(provider_id)

    out = []
    for t, amount, moved_id, penalty in rows:
        booking = bookings.get(booking_id(t, moved_id))
        fee = t.kind == "reschedule_fee"
        out.append(
            Earning(booking, share(booking, penalty if fee else None), amount, t.created_at, fee)
        )
    return out


def penalties(provider_id, limit=50):
    """Debits on the payable that are not payouts (cancellation penalties, reschedule fees
    given back), each described like a statement line: ``[StatementLine]`` (the change
    negative; no running balance), newest first."""
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
    return _described([(t, t.created_at, amount, None) for t, amount in rows])


def _week_start(day):
    return day - timedelta(days=day.weekday())


def weekly_earnings(provider_id, weeks=12, now=None):
    """Earnings (``EARNING_KINDS``: completions and reschedule fee shares, as the
    earnings list) per IST week (Monday–Sunday), oldest first."""
    now = now or utcnow()
    this_week = _week_start(now.astimezone(INDIA_TZ).date())
    first = this_week - timedelta(weeks=weeks - 1)
    since = datetime.combine(first, time(0), INDIA_TZ)
    rows = db.session.execute(
        _payable_lines(provider_id).where(
            LedgerTransaction.kind.in_(EARNING_KINDS), LedgerTransaction.created_at >= since
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


class YearTds(NamedTuple):
    """The TDS card's figures of financial year ``fy``: the profile's own TDS and gross,
    and ``payee_gross``, the gross of every profile of its PAN (its own while it has
    none): the threshold is counted on that (``common.same_payee``)."""

    fy: str
    tds: int
    gross: int
    payee_gross: int


def year_tds(provider_id, now=None):
    """:class:`YearTds` of the year's payouts that still count: a returned payout gives
    its TDS back in its own year, even if it came back after the year ended (docs/payouts.md,
    "Which year a payout's TDS belongs to"; the TDS report follows the same rule). One
    statement: the payee's rows, the profile's own summed apart."""
    fy = financial_year(now or utcnow())
    mine = m.Payout.provider_id == provider_id
    total, gross, payee_gross = db.session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(sa.case((mine, m.Payout.tds), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((mine, m.Payout.gross), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(m.Payout.gross), 0),
        ).where(
            same_payee(provider_id),
            m.Payout.financial_year == fy,
            m.Payout.returned.is_(False),
        )
    ).one()
    return YearTds(fy, int(total or 0), int(gross or 0), int(payee_gross or 0))


def tds_this_year(provider_id, now=None):
    """(fy, TDS, gross) of the profile's own payouts of the year (:func:`year_tds`)."""
    return year_tds(provider_id, now)[:3]


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


def _instant_carry(provider_id, balance, now, pan_on_file=None):
    """Why an INSTANT provider's payable is not paid out, or None. INSTANT has no minimum,
    but RazorpayX pays nothing under ₹1: whether the next payout is sent is
    ``create.next_payout``'s decision (``create_payout`` follows the same), said here in
    the reader's language (the domain cannot translate)."""
    decision, _rule, _result = next_payout(
        provider_id, financial_year(now), balance, pan_on_file=pan_on_file
    )
    if decision.pay:
        return None
    minimum = format_inr(GATEWAY_MINIMUM_PAYOUT)
    if decision.reason == BELOW_GATEWAY_MINIMUM:
        return gettext(
            "%(available)s is below the smallest payout (%(minimum)s); it carries forward.",
            available=format_inr(balance),
            minimum=minimum,
        )
    return gettext(  # TDS takes all of it, or leaves under ₹1
        "After TDS of %(tds)s, %(net)s of %(available)s is left: below the smallest payout "
        "(%(minimum)s), so it carries forward.",
        tds=format_inr(decision.tds),
        net=format_inr(decision.net),
        available=format_inr(balance),
        minimum=minimum,
    )


def money_in_transit(provider_id, fy):
    """(on its way, on hold, on hold of ``fy``'s payouts): the nets of the provider's
    payouts whose money has left the payable and not come back (queued, at RazorpayX, or
    failed and waiting for a retry), those the clinic holds apart (``status.held_back``:
    neither sent nor retried until the hold is lifted, so not "on its way to your bank"),
    and of those the ones in the financial year ``fy`` (the TDS card counts them among the
    year's payouts). One statement; few rows (only payouts not final yet)."""
    rows = db.session.scalars(
        sa.select(m.Payout).where(
            m.Payout.provider_id == provider_id,
            m.Payout.returned.is_(False),
            m.Payout.status.in_(
                (PayoutStatus.QUEUED, PayoutStatus.PROCESSING, PayoutStatus.FAILED)
            ),
        )
    ).all()
    held = [p for p in rows if held_back(p)]
    on_its_way = sum(p.net for p in rows if not held_back(p))
    return on_its_way, sum(p.net for p in held), sum(p.net for p in held if p.financial_year == fy)


def dashboard(provider):
    now = utcnow()
    balance = payable_balance(provider.id)
    fy, tds, fy_gross, payee_gross = year_tds(provider.id, now)
    series = weekly_earnings(provider.id, now=now)
    in_flight, on_hold, fy_on_hold = money_in_transit(provider.id, fy)
    carry = carry_on = None
    next_run = next_run_day(provider.payout_schedule, now)
    rule = policy().tds_rule_for(fy)
    pan_on_file = payee_key(provider.pan) is not None
    # The rate the next payouts deduct past the threshold: section 206AA's without a PAN.
    rate_bps, higher_section = rate_for_payee(rule, pan_on_file=pan_on_file)
    if provider.payout_schedule != INSTANT:
        decision = cycle_payable(balance, policy=policy())
        if not decision.pay:
            # decision.message's words, in the reader's language (the domain cannot translate)
            carry = gettext(
                "Minimum payout threshold not met. Required: %(required)s, "
                "Available: %(available)s",
                required=format_inr(policy().payout_minimum),
                available=format_inr(balance),
            )
            carry_on = gettext(
                "Your balance carries forward until it reaches %(minimum)s.",
                minimum=format_inr(policy().payout_minimum),
            )
    elif balance > 0:
        carry = _instant_carry(provider.id, balance, now, pan_on_file)
    start, end = financial_year_bounds(fy)
    current, payout_account = current_fund_account(provider.id), payout_fund_account(provider.id)
    return {
        "balance": balance,
        "fy": fy,
        "fy_start": start,
        "fy_end": end,
        "tds": tds,
        "fy_gross": fy_gross,
        "fy_after_tds": fy_gross - tds,  # the year's payouts less TDS, those on their way too
        "fy_on_hold": fy_on_hold,  # of them, held by the clinic (said apart)
        # Counted per PAN: with the year's payouts of its other profiles (same_payee).
        "tds_applies": over_threshold(payee_gross, policy().tds_rule_for(fy)),
        "payee_gross": payee_gross if payee_gross != fy_gross else None,
        "in_flight": in_flight,
        "on_hold": on_hold,
        "earnings": earnings(provider.id),
        "penalties": penalties(provider.id),
        "weekly": series,
        "bars": chart_bars(series),
        "period_total": sum(a for _d, a in series),
        "fund_account": current,
        "payout_account": payout_account,
        "pays_earlier_account": pays_earlier_account(current, payout_account),
        "carry_message": carry,
        "carry_forward": carry_on,
        # "Monday 14 Dec": the page says its names in the reader's language (day_names).
        "next_run": next_run.strftime("%A %d %b") if next_run else None,
        "threshold": rule.threshold,
        "tds_section": rule.section,
        "tds_rate_bps": rate_bps,
        # No PAN on file: the card says section 206AA's rate, and what a PAN changes.
        "no_pan_section": higher_section,
        "pan_rate_bps": rule.rate_bps,
    }


@dataclass(frozen=True)
class StatementLine:
    """One movement of the payable, said plainly: where the money came from or went.
    ``what`` is a catalogue label and ``detail`` a ``Text`` (or ""): the page shows both
    through the ``t`` filter, in the reader's language."""

    at: object
    what: str
    detail: str
    change: int  # paise; an earning is positive, a payout or penalty negative
    balance: int | None  # the payable after this line (None in the penalties list)
    booking_id: int | None = None
    note: str = ""  # a catch-up payout's reason (a Text), said under the detail


# What each movement is called, and how its detail reads (docs/i18n.md). Descriptions come
# from the transaction's kind and reference, never from its stored (English) memo.
EARNING = N_("Earning")
RESCHEDULE_FEE = N_("Reschedule fee")
FEE_GIVEN_BACK = N_("Reschedule fee given back")
PENALTY = N_("Cancellation penalty")
PAYOUT = N_("Payout")
PAYOUT_RETURNED = N_("Payout returned")
OTHER = N_("Other change")
MSG_EARNING = N_("%(booking)s (fee less commission)")
MSG_RESCHEDULE_FEE = N_("Your share of the fee to move %(booking)s")
MSG_FEE_GIVEN_BACK = N_("Your share of the fee to move %(booking)s, given back to the patient")
MSG_PENALTY = N_("You cancelled %(booking)s")
MSG_PAYOUT = N_("Payout #%(id)s: %(net)s to your bank")
MSG_PAYOUT_TDS = N_("Payout #%(id)s: %(net)s to your bank + %(tds)s TDS (section %(section)s)")
# A payout the clinic holds (``status.held_back``) has not gone to the bank: said so until
# the hold is lifted, then as any other.
MSG_PAYOUT_HELD = N_(
    "Payout #%(id)s: %(net)s on hold at the clinic: it goes to your bank once the clinic "
    "releases it"
)
MSG_PAYOUT_HELD_TDS = N_(
    "Payout #%(id)s: %(net)s + %(tds)s TDS (section %(section)s), on hold at the clinic: "
    "it goes to your bank once the clinic releases it"
)
MSG_PAYOUT_RETURNED = N_("Payout #%(id)s did not reach your bank")
MSG_BOOKING = N_("%(service)s for %(name)s, %(when)s")
MSG_SOME_BOOKING = N_("an appointment")
# The statement's own words for kinds it knows only by name (none post to the payable today).
KIND_LABELS = {
    "booking_completed": EARNING,
    "reschedule_fee": RESCHEDULE_FEE,
    "reschedule_fee_refund": FEE_GIVEN_BACK,
    "provider_penalty": PENALTY,
    "payout_initiated": PAYOUT,
    "payout_failed": PAYOUT_RETURNED,
    "payout_reversed": PAYOUT_RETURNED,
}


def _booking_text(booking, start=None):
    """The appointment named as a ``Text``: service, patient and start (``start``, else
    its own) in the clinic's time (the page's date format; its month name said in the
    reader's language)."""
    if booking is None:
        return Text(MSG_SOME_BOOKING)
    zone = ZoneInfo(getattr(booking.clinic, "timezone", None) or CLINIC_TIMEZONE)
    when = DateText((start or booking.start_at).astimezone(zone).strftime("%d %b %Y, %H:%M"))
    return Text(MSG_BOOKING, service=booking.service.name, name=booking.visit.for_name, when=when)


def _booking_in_memo(memo):
    # Penalties name their booking in the memo ("… booking 17"), written by the refunds
    # capability, whose cancellation row payouts does not read. Only the number is used.
    word = (memo or "").rsplit("booking ", 1)
    tail = word[1].split()[0] if len(word) == 2 and word[1] else ""
    return int(tail) if is_digits(tail) else None


def payable_statement_page(provider_id, *, after=None, before=None, per_page=30):
    """Every movement of the provider's payable, newest first, with the balance after it
    (issue #16: every rupee of the payable traces to its appointment, penalty, fee or
    payout). Loads the page's bookings, reschedules and payouts in three queries."""
    page = account_history_page(
        chart.provider_payable(provider_id), after=after, before=before, per_page=per_page
    )
    items = _described([(line, line.at, line.change, line.balance) for line in page.items])
    return replace(page, items=items)


def _described(rows):
    """``[(movement, at, change, balance)]`` → ``[StatementLine]``; a movement has the
    ledger transaction's kind, memo and reference."""
    refs = {"booking": set(), "reschedule": set(), "payout": set()}
    for line, _at, _change, _balance in rows:
        if line.reference_type in refs and is_digits(line.reference_id):
            refs[line.reference_type].add(int(line.reference_id))
        if line.kind == "provider_penalty" and _booking_in_memo(line.memo):
            refs["booking"].add(_booking_in_memo(line.memo))
    reschedules = _by_id(Reschedule, refs["reschedule"])
    refs["booking"] |= {r.booking_id for r in reschedules.values()}
    bookings = _by_id(IndividualBooking, refs["booking"], NAMED_BOOKING)
    payouts_by_id = _by_id(m.Payout, refs["payout"])
    items = []
    for line, at, change, balance in rows:
        ref = int(line.reference_id) if is_digits(line.reference_id) else None
        what, detail, booking_id = _describe(line, ref, bookings, reschedules, payouts_by_id)
        payout = payouts_by_id.get(ref) if line.kind == "payout_initiated" else None
        note = (payout_tds_note(payout) if payout is not None else None) or ""
        items.append(StatementLine(at, what, detail, change, balance, booking_id, note))
    return items


def payout_tds_note(payout):
    """Why this payout deducted more than the rate on its own gross (the year's TDS
    catch-up, section 206AA's rate without a PAN), said to the provider in the admin's
    words (``common.tds_note``, by the rule the payout was deducted under); else None."""
    return tds_note(payout, yours=True)


def payout_tds_notes(payouts):
    """``{payout id: note}`` for the catch-up payouts among ``payouts``."""
    notes = {p.id: payout_tds_note(p) for p in payouts}
    return {pid: note for pid, note in notes.items() if note}


def _by_id(model, ids, options=()):
    if not ids:
        return {}
    query = sa.select(model).where(model.id.in_(ids)).options(*options)
    return {row.id: row for row in db.session.scalars(query)}


def _describe(line, ref, bookings, reschedules, payouts_by_id):
    """(what, detail, booking id) for one payable movement."""
    kind = line.kind
    if kind == "booking_completed":
        return EARNING, Text(MSG_EARNING, booking=_booking_text(bookings.get(ref))), ref
    if kind in ("reschedule_fee", "reschedule_fee_refund"):
        resched = reschedules.get(ref)
        booking = bookings.get(resched.booking_id) if resched else None
        message = MSG_RESCHEDULE_FEE if kind == "reschedule_fee" else MSG_FEE_GIVEN_BACK
        return (
            KIND_LABELS[kind],
            # Named by the time it was moved from: its time now may have moved again.
            Text(message, booking=_booking_text(booking, resched.old_start if resched else None)),
            booking.id if booking else None,
        )
    if kind == "provider_penalty":
        booking_id = _booking_in_memo(line.memo)
        return (
            PENALTY,
            Text(MSG_PENALTY, booking=_booking_text(bookings.get(booking_id))),
            booking_id,
        )
    payout = payouts_by_id.get(ref)
    if kind == "payout_initiated" and payout is not None:
        held = held_back(payout)
        if payout.tds:
            detail = Text(
                MSG_PAYOUT_HELD_TDS if held else MSG_PAYOUT_TDS,
                id=payout.id,
                net=format_inr(payout.net),
                tds=format_inr(payout.tds),
                section=tds_section(payout),
            )
        else:
            detail = Text(
                MSG_PAYOUT_HELD if held else MSG_PAYOUT, id=payout.id, net=format_inr(payout.net)
            )
        return PAYOUT, detail, None
    if kind in ("payout_failed", "payout_reversed") and payout is not None:
        return PAYOUT_RETURNED, Text(MSG_PAYOUT_RETURNED, id=payout.id), None
    # Never the stored memo: it is English, and not written for the doctor.
    return KIND_LABELS.get(kind, OTHER), "", None
