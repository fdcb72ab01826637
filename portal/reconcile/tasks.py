"""The run job, the daily schedule, and late webhooks closing their cases. Importing this
module registers them (it is in ``CAPABILITIES``).

Late webhooks: a run compares what both sides said at one moment. When a capture (a
visit's payment or a reschedule fee) or a refund's webhook lands after the run wrote its
case (a run concurrent with webhooks, or one that simply came late), the booking and
refund events say so and the open case of that visit or refund is compared again with
the gateway record the run stored: it becomes MATCHED when the two now agree. Only ever
towards MATCHED: finding new discrepancies is the run's job. A duplicate stays one: the
event is any on the visit (a free move, say), not news about the gateway's listing."""

import logging

import sqlalchemy as sa

from portal import events
from portal.booking.models import Reschedule
from portal.config import policy, setting
from portal.db import utcnow
from portal.domain.states import RECON_CASE, ReconCaseStatus, ReconRunStatus
from portal.extensions import db
from portal.jobs import job, periodic
from portal.reconcile import cases, ours, window
from portal.reconcile.matching import Garbage, compare, gateway_side
from portal.reconcile.models import Reason, ReconCase, ReconRun
from portal.reconcile.run import JOB, SCHEDULE, STALE_RUN, execute, start_run, tolerance

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


# --- late webhooks close their cases ---------------------------------------------------------


def _recheck(found):
    now = int(utcnow().timestamp())
    for case in found:
        if case.status not in (ReconCaseStatus.DISCREPANCY, ReconCaseStatus.PENDING):
            continue
        if not case.theirs:
            continue
        try:
            theirs = gateway_side(
                case.kind,
                {
                    "id": case.reference,
                    "amount": case.theirs.get("amount"),
                    "status": case.theirs.get("status"),
                    "created_at": case.theirs.get("at"),
                    "order_id": case.theirs.get("order_id"),
                },
            )
        except Garbage:
            continue
        fresh = ours.by_reference(case.kind, [case.reference]).get(case.reference)
        if fresh is None and case.kind == "payment":
            fresh = ours.payments_by_order([theirs])[0].get(case.reference)
        if fresh is None:
            continue
        outcome = compare(
            fresh,
            theirs,
            now=now,
            tolerance=tolerance(),
            grace=setting("RECON_PENDING_GRACE_SECONDS"),
            # As the run judged it: a webhook does not undo a listing twice or an order
            # paid twice (our row, found by the order, is the other payment's).
            duplicate=case.reason == Reason.DUPLICATE,
        )
        if outcome.status == ReconCaseStatus.MATCHED:
            RECON_CASE.move(case, ReconCaseStatus.MATCHED)
            case.reason = None
            cases.show_sides(case, fresh, theirs)


def recheck_visit(visit_id):
    found = db.session.scalars(
        sa.select(ReconCase).where(
            ReconCase.visit_id == visit_id,
            ReconCase.status.in_((ReconCaseStatus.DISCREPANCY, ReconCaseStatus.PENDING)),
        )
    ).all()
    _recheck(found)


def recheck_refund(refund_id):
    found = db.session.scalars(
        sa.select(ReconCase).where(
            ReconCase.our_type == "refund",
            ReconCase.our_id == refund_id,
            ReconCase.status.in_((ReconCaseStatus.DISCREPANCY, ReconCaseStatus.PENDING)),
        )
    ).all()
    _recheck(found)


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
