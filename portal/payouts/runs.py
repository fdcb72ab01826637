"""Payout runs: WEEKLY and MONTHLY cycles, the INSTANT payout per completed booking,
and the daily sweep that pays what INSTANT providers have left on their payable (money
back from a reversal, a balance recovered after a penalty).

A run has a unique key (``WEEKLY:2026-11-22`` = the week ending that Sunday, IST), so the
scheduler ticking twice, or two schedulers, make one run. Providers are paid in batches,
one commit per batch; a crash mid-run is resumed by running the same key again (a
provider already paid in this run is skipped)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal.audit.service import record
from portal.catalog.models import INSTANT, MONTHLY, WEEKLY, Provider
from portal.db import utcnow
from portal.domain.rates import INDIA_TZ
from portal.extensions import db
from portal.payouts import engine
from portal.payouts import models as m

BATCH = 200
MAX_SKIPS_KEPT = 500


def period_end_for(schedule, today: date) -> date | None:
    """The last day of the period a run on ``today`` (IST) pays: the previous Sunday for
    WEEKLY (runs on Mondays), the previous month's last day for MONTHLY (runs on the 1st),
    yesterday for the INSTANT sweep. None when no run is due today."""
    if schedule == WEEKLY:
        return today - timedelta(days=1) if today.weekday() == 0 else None
    if schedule == MONTHLY:
        return today - timedelta(days=1) if today.day == 1 else None
    if schedule == INSTANT:
        return today - timedelta(days=1)
    raise ValueError(f"unknown schedule {schedule!r}")


def ist_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(INDIA_TZ).date()


def _get_or_create_run(schedule, period_end, actor=None):
    key = f"{schedule}:{period_end.isoformat()}"
    run = db.session.scalar(sa.select(m.PayoutRun).where(m.PayoutRun.key == key))
    if run is not None:
        return run, False
    try:
        with db.session.begin_nested():
            run = m.PayoutRun(key=key, schedule=schedule, period_end=period_end,
                              started_by_id=getattr(actor, "id", None), skipped=[])
            db.session.add(run)
            db.session.flush()
    except IntegrityError:
        return db.session.scalar(sa.select(m.PayoutRun).where(m.PayoutRun.key == key)), False
    record(actor, "payout_run.started", "payout_run", run.id,
           after={"key": key, "schedule": schedule})
    return run, True


def run_cycle(schedule, period_end: date | None = None, *, actor=None, commit=True,
              provider_ids=None):
    """Pay every active provider on ``schedule`` whose payable meets the minimum; the rest
    carry forward. Returns the run. Resumable: providers already paid in this run are
    skipped."""
    period_end = period_end or ist_today() - timedelta(days=1)
    run, _created = _get_or_create_run(schedule, period_end, actor)
    if run.status == m.RUN_DONE:
        return run
    paid_already = set(db.session.scalars(
        sa.select(m.Payout.provider_id).where(m.Payout.run_id == run.id)))
    query = sa.select(Provider.id).where(Provider.payout_schedule == schedule,
                                         Provider.active.is_(True)).order_by(Provider.id)
    if provider_ids is not None:
        query = query.where(Provider.id.in_(list(provider_ids)))
    ids = [pid for pid in db.session.scalars(query) if pid not in paid_already]
    run_id = run.id
    skipped = list(run.skipped or [])
    considered = run.providers_considered
    kind = m.INSTANT_KIND if schedule == INSTANT else m.CYCLE_KIND
    for index, provider_id in enumerate(ids, 1):
        # One transaction per provider: a payout, its ledger lines, its audit row and its
        # send job commit together (no SAVEPOINT: an outbox item created inside one would
        # be handed over at the savepoint's release, before the real commit).
        run = db.session.get(m.PayoutRun, run_id)
        considered += 1
        try:
            result = engine.create_payout(provider_id, kind=kind, run=run,
                                          apply_minimum=schedule != INSTANT)
        except engine.PayoutError as exc:
            db.session.rollback()
            run = db.session.get(m.PayoutRun, run_id)
            result = engine.Skipped(provider_id, exc.message)
        if isinstance(result, engine.Skipped):
            run.carried_forward += 1
            if len(skipped) < MAX_SKIPS_KEPT:
                skipped.append({"provider_id": provider_id, "reason": result.reason,
                                "balance": result.balance})
        else:
            run.payouts_created += 1
            run.total_gross += result.gross
        if index % BATCH == 0 or isinstance(result, m.Payout):
            run.providers_considered = considered
            run.skipped = list(skipped)
        if commit:
            db.session.commit()
        else:
            db.session.flush()
    run = db.session.get(m.PayoutRun, run_id)
    run.providers_considered = considered
    run.skipped = list(skipped)
    run.status = m.RUN_DONE
    run.finished_at = utcnow()
    record(actor, "payout_run.finished", "payout_run", run.id,
           after={"payouts": run.payouts_created, "carried_forward": run.carried_forward,
                  "total_gross": run.total_gross})
    if commit:
        db.session.commit()
    return run


def due_runs(now: datetime | None = None):
    """``[(schedule, period_end)]`` due today and not done yet."""
    today = ist_today(now)
    due = []
    for schedule in (WEEKLY, MONTHLY, INSTANT):
        period_end = period_end_for(schedule, today)
        if period_end is None:
            continue
        key = f"{schedule}:{period_end.isoformat()}"
        status = db.session.scalar(sa.select(m.PayoutRun.status).where(m.PayoutRun.key == key))
        if status != m.RUN_DONE:
            due.append((schedule, period_end))
    return due


def instant_payout(provider_id, booking_id=None):
    """The INSTANT payout after a completed booking: the provider's whole positive
    payable (this earning, less any penalty, plus anything returned), no minimum."""
    provider = db.session.get(Provider, provider_id)
    if provider is None or provider.payout_schedule != INSTANT:
        return None
    result = engine.create_payout(provider_id, kind=m.INSTANT_KIND, booking_id=booking_id,
                                  apply_minimum=False)
    if isinstance(result, engine.Skipped):
        record(None, "payout.skipped", "provider", provider_id,
               after={"reason": result.reason, "booking_id": booking_id,
                      "balance": result.balance})
    return result
