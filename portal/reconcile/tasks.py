"""The run job, the daily schedule, and late webhooks closing their cases. Importing this
module registers them (it is in ``CAPABILITIES``).

Late webhooks: a run compares what both sides said at one moment. When a capture (a
visit's payment or a reschedule fee) or a refund's webhook lands after the run wrote its
case (a run concurrent with webhooks, or one that simply came late), the booking and
refund events say so and the open case of that visit or refund is compared again with
the gateway record the run stored: it becomes MATCHED when the two now agree. Only ever
towards MATCHED: finding new discrepancies is the run's job. A duplicate stays one: the
event is any on the visit (a free move, say), not news about the gateway's listing.
The same events bring an **accepted** case's posting to our side as it is now, or match
it when the two agree now (``recheck.follow_accepted``), instead of leaving a changed
posting to the next run."""

import logging

import sqlalchemy as sa

from portal import events
from portal.booking.models import Reschedule
from portal.config import policy, setting
from portal.db import utcnow
from portal.domain.states import ReconCaseStatus, ReconRunStatus
from portal.extensions import db
from portal.jobs import job, periodic
from portal.payments.models import Payment
from portal.reconcile import recheck, window
from portal.reconcile.matching import ACCEPTED
from portal.reconcile.models import OPEN_CASE, ReconCase, ReconRun
from portal.reconcile.run import JOB, SCHEDULE, STALE_RUN, execute, start_run
from portal.refunds.models import Refund

log = logging.getLogger("portal.reconcile")

DAILY_ATTEMPTS = 3  # failed scheduled runs of one day before the schedule gives up on it


@job(JOB)
def run_job(run_id):
    execute(run_id)


@periodic("reconcile.daily", every=15 * 60)
def daily():
    """At the policy's run time, clinic time (02:00 by default; or the first tick after
    it), the previous clinic day; and a day whose run was missed (its next day passed
    without a tick: the workers down), at most ``RECON_CATCH_UP_DAYS`` back, newest first,
    one run a tick (``window.days_due``)."""
    now = utcnow()
    for day in _days_due(now):
        start, end = window.day_window(day, day)
        runs = db.session.scalars(
            sa.select(ReconRun).where(
                ReconRun.trigger == SCHEDULE,
                ReconRun.window_start == start,
                ReconRun.window_end == end,
            )
        ).all()
        if any(r.status == ReconRunStatus.FINISHED for r in runs):
            continue
        if any(r.status == ReconRunStatus.RUNNING and now - r.started_at < STALE_RUN for r in runs):
            continue
        if sum(r.status == ReconRunStatus.FAILED for r in runs) >= DAILY_ATTEMPTS:
            continue
        run = start_run(start, end, trigger=SCHEDULE)
        return execute(run.id).id
    return None


def _days_due(now):
    """``window.days_due`` now: the first scheduled run's day read here, the catch-up from
    the setting. ``daily`` skips the days done or given up."""
    first_run = db.session.scalar(
        sa.select(sa.func.min(ReconRun.window_start)).where(
            ReconRun.trigger == SCHEDULE, ReconRun.status == ReconRunStatus.FINISHED
        )
    )
    return window.days_due(
        window.previous_clinic_day(now),
        window.daily_run_due(now, policy().reconciliation_run_time),
        window.clinic_day(first_run) if first_run is not None else None,
        setting("RECON_CATCH_UP_DAYS"),
    )


# --- late webhooks close their cases, accepted cases follow our side ------------------------


def _recheck(query):
    """The cases ``query`` selects (open, or accepted) compared again with our side as it
    is now (``recheck``). Each is row-locked first (PostgreSQL), in id order, and its
    status read again under the lock, as an accept locks it: every writer of cases takes
    them last (a run, an accept and a sync after their visits and refunds, an event after
    its visit or refund). An open case read without the lock could be accepted meanwhile
    (a refund's webhook does not lock the visit an accept locks, a stray payment's accept
    locks no visit), then written matched over the accept with its posting kept: the
    money counted twice (review finding). Accepted by then, it follows our side."""
    now = int(utcnow().timestamp())
    ids = db.session.scalars(query.with_only_columns(ReconCase.id).order_by(ReconCase.id)).all()
    for case_id in ids:
        case = recheck.lock_case(case_id)
        if recheck.is_accepted(case):
            recheck.follow_accepted(case, now)
        elif case is not None and case.status in OPEN_CASE:
            _match_if_agreed(case, now)


def _match_if_agreed(case, now):
    if not case.theirs:
        return
    try:
        theirs = recheck.stored_theirs(case)
    except recheck.Unreadable:
        return
    fresh = recheck.ours_now(case, theirs)
    if fresh is None:
        return
    if recheck.judge(case, fresh, theirs, now).status == ReconCaseStatus.MATCHED:
        recheck.match(case, fresh, theirs)


# Open cases, and accepted ones (their postings follow our side), of the kinds an event
# on a visit or a refund concerns (a settlement case is our capture alone, moving no money).
CONCERNED = sa.and_(
    ReconCase.kind.in_(("payment", "refund")),
    sa.or_(
        ReconCase.status.in_(OPEN_CASE),
        sa.and_(ReconCase.status == ReconCaseStatus.RESOLVED, ReconCase.resolution == ACCEPTED),
    ),
)


def recheck_visit(visit_id):
    """The cases of the visit, and of its payments a case names no visit for (a capture we
    had no row for: a stray that turns out ours)."""
    references = sa.select(Payment.razorpay_payment_id).where(
        Payment.master_id == visit_id, Payment.razorpay_payment_id.is_not(None)
    )
    _recheck(
        sa.select(ReconCase).where(
            CONCERNED,
            sa.or_(
                ReconCase.visit_id == visit_id,
                sa.and_(ReconCase.kind == "payment", ReconCase.reference.in_(references)),
            ),
        )
    )


def recheck_refund(refund_id):
    """The cases of the refund, by our row or by the Razorpay refund it records now (a
    case written when no row of ours was known names none), and of the refund it replaced
    (a refund sent to the wallet: the one replaced can never be processed now)."""
    row = db.session.execute(
        sa.select(Refund.razorpay_refund_id, Refund.retry_of_id).where(Refund.id == refund_id)
    ).first()
    if row is None:
        return
    ours_ids = [i for i in (refund_id, row.retry_of_id) if i is not None]
    mine = sa.and_(ReconCase.our_type == "refund", ReconCase.our_id.in_(ours_ids))
    if row.razorpay_refund_id:
        mine = sa.or_(
            mine, sa.and_(ReconCase.kind == "refund", ReconCase.reference == row.razorpay_refund_id)
        )
    _recheck(sa.select(ReconCase).where(CONCERNED, mine))


@events.visit_confirmed.connect
def _visit_confirmed(sender, *, visit_id, **_):
    recheck_visit(visit_id)


@events.visit_needs_attention.connect
def _visit_flagged(sender, *, visit_id, reason=None, **_):
    # A capture that confirmed nothing (late, wrong amount) still recorded the payment.
    if reason != "RECONCILIATION":
        recheck_visit(visit_id)


@events.booking_rescheduled.connect
@events.reschedule_failed.connect
@events.reschedule_fee_unapplied.connect
def _fee_captured(sender, *, reschedule_id, **_):
    # A reschedule fee's capture moved the booking or went to the wallet (recorded on the
    # reschedule or on its own): its case is the visit's.
    visit_id = db.session.scalar(
        sa.select(Reschedule.visit_id).where(Reschedule.id == reschedule_id)
    )
    if visit_id is not None:
        recheck_visit(visit_id)


@events.refund_processed.connect
@events.refund_failed.connect
def _refund_moved(sender, *, refund_id, **_):
    recheck_refund(refund_id)
