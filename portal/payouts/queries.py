"""What the payout pages list and show (read only): payouts, runs, providers' payout
accounts with their payable balances, a payout's audit trail, a provider's schedule and
account history. Lists are keyset pages and load what their rows show with the page."""

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from portal.audit.models import AuditEntry
from portal.booking import claims
from portal.booking.models import (
    IndividualBooking,
    MasterBooking,
    Reschedule,
    SlotClaim,
    booking_providers,
)
from portal.catalog.models import Clinic, Provider
from portal.catalog.time_lock import provider_subject
from portal.db import db, utcnow
from portal.domain.rates import INDIA_TZ
from portal.domain.states import BookingStatus, PayoutStatus, RescheduleStatus
from portal.ledger import accounts as chart
from portal.ledger.service import balances
from portal.pagination import Order, keyset_page
from portal.payouts import models as m
from portal.payouts.common import fund_accounts_of, payout_account_among
from portal.payouts.returned import owed_condition

PAYOUT_ORDER = (Order(m.Payout.id, descending=True),)
PROVIDER_ORDER = (Order(Provider.display_name), Order(Provider.id))
# The admin list's filters beyond a status: held ones, and failed ones given back for good.
HELD, GIVEN_UP = "HELD", "GIVEN_UP"
# A provider's schedule: what is booked, under way or done (not cancelled or expired), and
# a time held while the patient pays (SCHEDULED): it blocks the doctor's leave and hours
# changes as a booking does (booking.claims.live_booking_intervals), so the doctor sees it.
ON_SCHEDULE = (
    BookingStatus.SCHEDULED,
    BookingStatus.CONFIRMED,
    BookingStatus.STARTED,
    BookingStatus.COMPLETED,
)


def payouts_page(*, provider_id=None, status=None, after=None, before=None, per_page=50):
    """Payouts newest first. ``status``: a PayoutStatus, ``HELD`` or ``GIVEN_UP``."""
    query = sa.select(m.Payout)
    if provider_id is not None:
        query = query.where(m.Payout.provider_id == provider_id)
    if status == HELD:
        query = query.where(m.Payout.held.is_(True))
    elif status == GIVEN_UP:
        query = query.where(m.Payout.status == PayoutStatus.FAILED, m.Payout.returned.is_(True))
    elif status:
        query = query.where(m.Payout.status == status)
    return keyset_page(
        query,
        PAYOUT_ORDER,
        after=after,
        before=before,
        per_page=per_page,
        options=(joinedload(m.Payout.provider),),
    )


def recent_runs(limit=20):
    return db.session.scalars(
        sa.select(m.PayoutRun).order_by(m.PayoutRun.id.desc()).limit(limit)
    ).all()


def status_counts():
    """``{status: number of payouts}``."""
    return dict(
        db.session.execute(
            sa.select(m.Payout.status, sa.func.count()).group_by(m.Payout.status)
        ).all()
    )


def attention_count():
    """Payouts held, or failed and given back to the payable for good, not yet retried
    (a retried one's money went out again as the payout it names) and with some of their
    money still owed (``returned.owed_condition``: the payouts made since may have paid it
    out again). One statement."""
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(m.Payout)
        .where(
            sa.or_(
                m.Payout.held.is_(True),
                sa.and_(
                    m.Payout.status == PayoutStatus.FAILED,
                    m.Payout.returned.is_(True),
                    m.Payout.retried_by_payout_id.is_(None),
                    owed_condition(),
                ),
            )
        )
    )


def payout_audit(payout_id):
    return db.session.scalars(
        sa.select(AuditEntry)
        .where(AuditEntry.object_type == "payout", AuditEntry.object_id == str(payout_id))
        .order_by(AuditEntry.id)
    ).all()


def provider_names(provider_ids):
    """``{provider id: display name}`` for these providers only."""
    ids = {int(i) for i in provider_ids if i is not None}
    if not ids:
        return {}
    return dict(
        db.session.execute(
            sa.select(Provider.id, Provider.display_name).where(Provider.id.in_(ids))
        ).all()
    )


def run_provider_names(run):
    """Names of every provider a run paid or carried forward."""
    ids = [p.provider_id for p in run.payouts] + [
        s.get("provider_id") if isinstance(s, dict) else getattr(s, "provider_id", None)
        for s in (run.skipped or [])
    ]
    return provider_names(ids)


@dataclass(frozen=True)
class ProviderAccounts:
    """A provider's row on the admin's accounts page: its current fund account (or None)
    and the account payouts go to (``common.payout_account_among``: or None, none can)."""

    provider: Provider
    current: m.FundAccount | None
    payout_account: m.FundAccount | None


def payout_accounts_page(*, after=None, before=None, per_page=50):
    """Providers by name (``ProviderAccounts`` rows), each with its current fund account
    and the account payouts go to, both from the page's providers' accounts read in one
    query (``common.fund_accounts_of``: the rule needs each one's history, not the
    current row the page joined before); ``Page.extra`` holds ``balances``: ``{provider
    id: payable paise}`` for the page (one query)."""
    page = keyset_page(
        sa.select(Provider), PROVIDER_ORDER, after=after, before=before, per_page=per_page
    )
    accounts = fund_accounts_of([provider.id for provider in page.items])
    page = replace(
        page,
        items=[
            ProviderAccounts(
                provider,
                next((row for row in accounts[provider.id] if row.current), None),
                payout_account_among(accounts[provider.id]),
            )
            for provider in page.items
        ],
    )
    by_code = balances(chart.provider_payable(row.provider.id) for row in page.items)
    page.extra["balances"] = {
        row.provider.id: by_code.get(chart.provider_payable(row.provider.id), 0)
        for row in page.items
    }
    return page


def fund_account_history(provider_id, limit=10):
    return db.session.scalars(
        sa.select(m.FundAccount)
        .where(m.FundAccount.provider_id == provider_id)
        .order_by(m.FundAccount.id.desc())
        .limit(limit)
    ).all()


@dataclass(frozen=True)
class HeldMove:
    """A move's new time held for the provider while the patient pays its fee (a
    ``Reschedule`` PENDING_PAYMENT, not lapsed, with a live claim of the provider's): a
    row of the schedule at that time, beside the booking's own row at its current time."""

    booking: IndividualBooking
    reschedule_id: int
    start_at: datetime
    end_at: datetime
    lapses_at: datetime

    @property
    def clinic(self):
        return self.booking.clinic  # a move keeps its clinic (and the page its zone)


def schedule_page(
    provider_id, *, now=None, first_day=None, days=14, after=None, before=None, per_page=50
):
    """A provider's bookings that reach into the ``days`` days (IST) from ``first_day``
    (today when None), unpaid holds while they last among them, oldest first, a page at a
    time; when those days include today, also any still STARTED (from an earlier day: still
    to be completed). Among them, at its time, each new time held for a move whose fee is
    being paid (:class:`HeldMove`, while the hold lasts). ``Page.extra``: ``moved_from``
    ``{booking id: its start before its latest move}``, ``moving_to`` ``{booking id: the
    new start its move's fee is being paid for}``. One statement (and the team's
    providers'), however many rows.

    "Reach into a day": one that began before midnight and ends after it (23:45 to 00:15)
    is still to be started or completed after midnight, so it stays on the page."""
    now = now or utcnow()
    local_now = now.astimezone(INDIA_TZ)
    first_day = first_day or local_now.date()
    day_start = datetime.combine(first_day, time(), tzinfo=INDIA_TZ)
    until = day_start + timedelta(days=days)
    in_days = sa.and_(IndividualBooking.end_at > day_start, IndividualBooking.start_at < until)
    if day_start <= local_now < until:
        in_days = sa.or_(IndividualBooking.status == BookingStatus.STARTED, in_days)
    # Where a row stands on the page: a booking at its own time (``move_id`` 0), and a
    # move's held new time (``move_id`` the move's), each a row, paged as one list.
    own = (
        sa.select(
            IndividualBooking.id.label("booking_id"),
            IndividualBooking.start_at.label("at"),
            IndividualBooking.end_at.label("until"),
            sa.literal(0, sa.Integer).label("move_id"),
            sa.cast(sa.null(), Reschedule.expires_at.type).label("lapses"),
        )
        .join(booking_providers, booking_providers.c.booking_id == IndividualBooking.id)
        .where(booking_providers.c.provider_id == provider_id, in_days)
    )
    held = claims.held_move_claims(
        now,
        SlotClaim.booking_id,
        SlotClaim.start_at,
        SlotClaim.end_at,
        Reschedule.id,
        Reschedule.expires_at,
        start=day_start,
        end=until,
    ).where(SlotClaim.subject == provider_subject(provider_id))
    placed = sa.union_all(own, held).subquery("placed")
    orders = (
        Order(placed.c.at, key=lambda row: row.at),
        Order(IndividualBooking.id, key=lambda row: row[0].id),
        Order(placed.c.move_id, key=lambda row: row.move_id),
    )
    query = (
        sa.select(
            IndividualBooking,
            _moved_from().label("moved_from"),
            _moving_to(now).label("moving_to"),
            placed.c.at,
            placed.c.until,
            placed.c.move_id,
            placed.c.lapses,
        )
        .join(placed, placed.c.booking_id == IndividualBooking.id)
        .join(MasterBooking, MasterBooking.id == IndividualBooking.master_id)
        .where(
            IndividualBooking.status.in_(ON_SCHEDULE),
            # A hold only while it lasts, as it blocks the doctor's time.
            claims.hold_still_active(now),
        )
    )
    page = keyset_page(
        query,
        orders,
        after=after,
        before=before,
        per_page=per_page,
        scalars=False,
        options=(
            joinedload(IndividualBooking.service),
            # Its name and zone; not its opening hours (selectin by default: a query more).
            joinedload(IndividualBooking.clinic).lazyload(Clinic.hours),
            selectinload(IndividualBooking.providers),
            joinedload(IndividualBooking.visit).joinedload(MasterBooking.patient),
            joinedload(IndividualBooking.visit).joinedload(MasterBooking.dependent),
        ),
    )
    page.extra["moved_from"] = {row[0].id: row.moved_from for row in page.items if row.moved_from}
    page.extra["moving_to"] = {row[0].id: row.moving_to for row in page.items if row.moving_to}
    page.items[:] = [
        HeldMove(row[0], row.move_id, row.at, row.until, row.lapses) if row.move_id else row[0]
        for row in page.items
    ]
    return page


def row_moves(booking_id, now=None):
    """One booking's ``(moved from, moving to)`` as the schedule's rows read them (either
    None): for its row shown alone (after an action on it), whichever page of days it is
    on. One statement."""
    row = db.session.execute(
        sa.select(_moved_from(), _moving_to(now or utcnow())).where(
            IndividualBooking.id == booking_id
        )
    ).first()
    return tuple(row) if row else (None, None)


def _moved_from():
    """Where a booking was before its latest done move (None when never moved), read with
    the page's rows rather than a query per row."""
    return (
        sa.select(Reschedule.old_start)
        .where(
            Reschedule.booking_id == IndividualBooking.id,
            Reschedule.status == RescheduleStatus.DONE,
        )
        .order_by(Reschedule.done_at.desc(), Reschedule.id.desc())
        .limit(1)
        .correlate(IndividualBooking)
        .scalar_subquery()
    )


def _moving_to(now):
    """The new start a booking's move is held at while its fee is being paid (None when no
    move is pending, or its checkout ran out), read with the page's rows."""
    return (
        claims.held_move_claims(now, Reschedule.new_start)
        .where(Reschedule.booking_id == IndividualBooking.id)
        .order_by(Reschedule.id.desc())
        .limit(1)
        .correlate(IndividualBooking)
        .scalar_subquery()
    )
