"""Payout runs: WEEKLY and MONTHLY cycles, the INSTANT payout per completed booking,
and the daily sweep that pays what INSTANT providers have left on their payable (money
back from a reversal, a balance recovered after a penalty).

A run has a unique key (``WEEKLY:2026-11-22`` = the week ending that Sunday, IST), so the
scheduler ticking twice, or two schedulers, make one run; and one runner at a time works
through it: it claims the run (``claimed_by``, until ``claimed_until``), renews the claim
with each provider, and a second runner meanwhile (another scheduler, a ``flask jobs
tick``, a tick while a long run is still going) finds it claimed and does nothing. Two at
once each read the providers to pay before the other paid them, so the second counted a
provider just paid as carried forward ("… Available: ₹0") and failed moving the finished
run to DONE. Providers go in id order, one unit of work per provider, which commits the
run's counts and how far it got (``last_provider_id``) with the provider's payout; a crash
mid-run is resumed by running the same key again once its claim has run out, from the
provider after the last turn committed, so no provider is counted twice. So ``run_cycle``
is called outside a unit of work (a job or a view), never inside one.

``due_runs`` lists what the periodic job starts or resumes: every OPEN run whose claim ran
out, whatever its day (a runner that died at 23:50 on a Monday, an admin's run that
stopped), and each schedule's latest period until its run is done (so a due day the
scheduler missed is caught up the next tick, under the period's key: once).

A run pays every provider on its schedule who is active or still owed money (a positive
payable): a provider deactivated before their last earnings were paid is paid them, or
listed among the run's skips with the reason."""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal.audit.service import record
from portal.catalog.models import INSTANT, MONTHLY, WEEKLY, Provider
from portal.db import savepoint, unit_of_work, utcnow
from portal.domain.rates import INDIA_TZ
from portal.domain.states import PAYOUT_RUN, PayoutRunStatus
from portal.extensions import db
from portal.payouts import models as m
from portal.payouts.common import PayoutError, Skipped, payable_column
from portal.payouts.create import create_payout

MAX_SKIPS_KEPT = 500
# How long a runner's claim lasts without news (it is renewed with every provider, a few
# milliseconds each): under the 15 minutes between ticks, so the tick after a runner died
# takes its run over.
CLAIM_FOR = timedelta(minutes=10)

log = logging.getLogger("portal.payouts")


class _ClaimLost(Exception):
    """Another runner took the run over (this one stalled past its claim)."""


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


def latest_period_end(schedule, today: date) -> date:
    """The period of the latest run due on or before ``today`` (IST): ``period_end_for``
    of the last Monday for WEEKLY, of the last 1st for MONTHLY, of today for the INSTANT
    sweep. A due day the scheduler missed (down all Monday) is still this period's until
    the next due day."""
    if schedule == WEEKLY:
        return today - timedelta(days=today.weekday() + 1)
    if schedule == MONTHLY:
        return today.replace(day=1) - timedelta(days=1)
    if schedule == INSTANT:
        return today - timedelta(days=1)
    raise ValueError(f"unknown schedule {schedule!r}")


def next_due_day(schedule, today: date) -> date:
    """The first day after ``today`` (IST) a run is due (``period_end_for`` is not None):
    the next Monday for WEEKLY (a week on from a Monday), the next 1st for MONTHLY,
    tomorrow for the INSTANT sweep."""
    if schedule == WEEKLY:
        return today + timedelta(days=7 - today.weekday())
    if schedule == MONTHLY:
        return (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    if schedule == INSTANT:
        return today + timedelta(days=1)
    raise ValueError(f"unknown schedule {schedule!r}")


def ist_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(INDIA_TZ).date()


def next_run_day(schedule, now: datetime | None = None) -> date | None:
    """The day (IST) a WEEKLY or MONTHLY provider's cycle next pays, as ``due_runs`` starts
    it: today while the latest period's run is not done (its due day, or one the scheduler
    missed: the next tick starts it), else the next Monday / 1st. None for INSTANT (each
    completion pays)."""
    if schedule not in (WEEKLY, MONTHLY):
        return None
    today = ist_today(now)
    latest = run_key(schedule, latest_period_end(schedule, today))
    done = db.session.scalar(
        sa.select(m.PayoutRun.id).where(
            m.PayoutRun.key == latest, m.PayoutRun.status == PayoutRunStatus.DONE
        )
    )
    return today if done is None else next_due_day(schedule, today)


def run_key(schedule, period_end, by_hand_at=None):
    """A scheduled run's key is its period (``WEEKLY:2026-11-22``: it happens once). An
    admin's run is keyed by its minute (``WEEKLY:admin:2026-11-22T15:04``, IST): taking the
    period's key would make that period's scheduled run a no-op, and what was earned after
    the admin's run would wait a whole period; two clicks in a minute are still one run."""
    if by_hand_at is None:
        return f"{schedule}:{period_end.isoformat()}"
    return f"{schedule}:admin:{by_hand_at.astimezone(INDIA_TZ):%Y-%m-%dT%H:%M}"


def _get_or_create_run(schedule, period_end, actor=None, by_hand_at=None, key=None):
    key = key or run_key(schedule, period_end, by_hand_at)
    run = db.session.scalar(sa.select(m.PayoutRun).where(m.PayoutRun.key == key))
    if run is not None:
        return run, False
    try:
        with savepoint(db.session):
            run = m.PayoutRun(
                key=key,
                schedule=schedule,
                period_end=period_end,
                status=PayoutRunStatus.OPEN,
                started_by_id=getattr(actor, "id", None),
                skipped=[],
            )
            db.session.add(run)
            db.session.flush()
    except IntegrityError:
        return db.session.scalar(sa.select(m.PayoutRun).where(m.PayoutRun.key == key)), False
    record(
        actor, "payout_run.started", "payout_run", run.id, after={"key": key, "schedule": schedule}
    )
    return run, True


def _claim(run_id, token):
    """Claim the run for this runner: only an OPEN run no one holds, or whose holder's
    claim ran out. One conditional UPDATE, so of two runners at once one gets it."""
    now = utcnow()
    claimed = db.session.execute(
        sa.update(m.PayoutRun)
        .where(
            m.PayoutRun.id == run_id,
            m.PayoutRun.status == PayoutRunStatus.OPEN,
            sa.or_(m.PayoutRun.claimed_by.is_(None), m.PayoutRun.claimed_until < now),
        )
        .values(claimed_by=token, claimed_until=now + CLAIM_FOR)
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1


def _held_run(run_id, token):
    """The run, read again and its claim renewed, while this runner still holds it; else
    None. The renewal is the UPDATE that locks the row (PostgreSQL) or the database
    (SQLite) until the commit, so no other runner can claim it before this commit."""
    renewed = db.session.execute(
        sa.update(m.PayoutRun)
        .where(
            m.PayoutRun.id == run_id,
            m.PayoutRun.claimed_by == token,
            m.PayoutRun.status == PayoutRunStatus.OPEN,
        )
        .values(claimed_until=utcnow() + CLAIM_FOR)
        .execution_options(synchronize_session=False)
    )
    if renewed.rowcount != 1:
        return None
    return db.session.scalar(
        sa.select(m.PayoutRun)
        .where(m.PayoutRun.id == run_id)
        .execution_options(populate_existing=True)
    )


def run_cycle(
    schedule,
    period_end: date | None = None,
    *,
    actor=None,
    provider_ids=None,
    by_hand=False,
    key=None,
):
    """Pay every provider on ``schedule`` who is active or still owed (a deactivated
    provider's positive payable) whose payable meets the minimum; the rest carry forward.
    Returns the run. Resumable: it goes on after the last provider whose turn was
    committed. ``by_hand``: an admin's run now, under a key of its own (``run_key``).
    ``key``: the run to resume when it is not the period's (an admin's run that stopped,
    from ``due_runs``). A run another runner holds is returned as it is (OPEN), untouched."""
    period_end = period_end or ist_today() - timedelta(days=1)
    token = uuid.uuid4().hex
    # The run row and this runner's claim commit first: it is what a resumed run finds.
    with unit_of_work():
        run, _created = _get_or_create_run(
            schedule, period_end, actor, by_hand_at=utcnow() if by_hand else None, key=key
        )
        if run.status == PayoutRunStatus.DONE:
            return run
        run_id = run.id
        if not _claim(run_id, token):
            log.info("payout run %s is being run by another runner: left to it", run.key)
            return run
        # Read after the claim: a runner that held it before can commit nothing more.
        run = db.session.scalar(
            sa.select(m.PayoutRun)
            .where(m.PayoutRun.id == run_id)
            .execution_options(populate_existing=True)
        )
        # A run left OPEN before ``last_provider_id`` was kept has none: only its paid
        # providers are known to be done.
        paid_already = set(
            db.session.scalars(sa.select(m.Payout.provider_id).where(m.Payout.run_id == run.id))
        )
        # Money earned is owed: a provider deactivated before being paid is still paid (or
        # listed with the reason). Their balance is read in this one statement, and only
        # for the inactive ones.
        query = (
            sa.select(Provider.id)
            .where(
                Provider.payout_schedule == schedule,
                sa.or_(Provider.active.is_(True), payable_column(Provider.id) > 0),
            )
            .order_by(Provider.id)
        )
        if run.last_provider_id is not None:
            query = query.where(Provider.id > run.last_provider_id)
        if provider_ids is not None:
            query = query.where(Provider.id.in_(list(provider_ids)))
        ids = [pid for pid in db.session.scalars(query) if pid not in paid_already]
    kind = m.INSTANT_KIND if schedule == INSTANT else m.CYCLE_KIND
    try:
        for provider_id in ids:
            _pay_one(run_id, token, provider_id, kind, schedule)
    except _ClaimLost:
        log.warning("payout run %s was taken over by another runner: this one stops", run_id)
        return db.session.get(m.PayoutRun, run_id)
    with unit_of_work():
        run = _held_run(run_id, token)
        if run is None:  # taken over meanwhile: the other runner finishes it
            return db.session.get(m.PayoutRun, run_id)
        PAYOUT_RUN.move(run, PayoutRunStatus.DONE)
        run.finished_at = utcnow()
        run.claimed_by = run.claimed_until = None
        record(
            actor,
            "payout_run.finished",
            "payout_run",
            run.id,
            after={
                "payouts": run.payouts_created,
                "carried_forward": run.carried_forward,
                "total_gross": run.total_gross,
            },
        )
    return run


def _pay_one(run_id, token, provider_id, kind, schedule):
    """One provider's turn: its payout, ledger lines, audit row and send job commit
    together with all of the run's counts and ``last_provider_id``, only while this runner
    holds the run (else all of it rolls back and :class:`_ClaimLost` stops the runner); a
    crash loses at most this provider's turn, which the resumed run does again, and the
    turns before it are neither done nor counted again."""
    with unit_of_work():
        try:
            result = create_payout(
                provider_id,
                kind=kind,
                run=db.session.get(m.PayoutRun, run_id),
                apply_minimum=schedule != INSTANT,
            )
        except PayoutError as exc:  # its own unit of work rolled back
            result = Skipped(provider_id, exc.message)
        run = _held_run(run_id, token)  # read again: the counts as committed
        if run is None:
            raise _ClaimLost
        run.providers_considered += 1
        run.last_provider_id = provider_id
        if isinstance(result, Skipped):
            run.carried_forward += 1
            skipped = list(run.skipped or [])
            if len(skipped) < MAX_SKIPS_KEPT:
                skipped.append(
                    {"provider_id": provider_id, "reason": result.reason, "balance": result.balance}
                )
                run.skipped = skipped
        else:
            run.payouts_created += 1
            run.total_gross += result.gross


class DueRun(NamedTuple):
    """A run the periodic job starts or resumes: ``run_cycle(schedule, period_end,
    key=key)``."""

    schedule: str
    period_end: date
    key: str


def due_runs(now: datetime | None = None) -> list[DueRun]:
    """What the periodic job runs, oldest first: every OPEN run no runner holds (its
    claim ran out, whatever its date: a runner that died late on its due day, an admin's
    run that stopped), then each schedule's latest period (``latest_period_end``) unless
    its run is done: today's on the due day, and a due day the scheduler missed the ticks
    after it. Only the latest missed period: a run pays the whole payable, so it pays what
    the runs of earlier missed periods would have. Two statements, whatever the runs."""
    now = now or utcnow()
    today = ist_today(now)
    stopped = db.session.execute(
        sa.select(m.PayoutRun.schedule, m.PayoutRun.period_end, m.PayoutRun.key)
        .where(
            m.PayoutRun.status == PayoutRunStatus.OPEN,
            sa.or_(m.PayoutRun.claimed_by.is_(None), m.PayoutRun.claimed_until < now),
        )
        .order_by(m.PayoutRun.period_end, m.PayoutRun.id)
    ).all()
    due = [DueRun(*row) for row in stopped]
    latest = [
        DueRun(schedule, end, run_key(schedule, end))
        for schedule in (WEEKLY, MONTHLY, INSTANT)
        for end in [latest_period_end(schedule, today)]
    ]
    done = set(
        db.session.scalars(
            sa.select(m.PayoutRun.key).where(
                m.PayoutRun.key.in_([d.key for d in latest]),
                m.PayoutRun.status == PayoutRunStatus.DONE,
            )
        )
    )
    listed = {d.key for d in due}
    due += [d for d in latest if d.key not in done and d.key not in listed]
    return due


def instant_payout(provider_id, booking_id=None):
    """The INSTANT payout after a completed booking: the provider's whole positive
    payable (this earning, less any penalty, plus anything returned), no minimum."""
    with unit_of_work():
        provider = db.session.get(Provider, provider_id)
        if provider is None or provider.payout_schedule != INSTANT:
            return None
        result = create_payout(
            provider_id, kind=m.INSTANT_KIND, booking_id=booking_id, apply_minimum=False
        )
        if isinstance(result, Skipped):
            record(
                None,
                "payout.skipped",
                "provider",
                provider_id,
                after={
                    "reason": result.reason,
                    "booking_id": booking_id,
                    "balance": result.balance,
                },
            )
        return result
