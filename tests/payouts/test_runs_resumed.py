"""Payout runs the scheduler must not lose: a run cut short (its runner died late on its
due day, an admin's run that stopped), a cycle whose due day the scheduler missed, and the
earnings of a provider deactivated before they were paid (review findings)."""

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal.catalog.models import Provider
from portal.extensions import db
from portal.payouts import models as m
from portal.payouts import runs, tasks
from portal.payouts.common import Skipped
from portal.payouts.create import MSG_NO_ACCOUNT
from tests.payouts.conftest import payable, payouts_of
from tests.querycount import counted_queries

MONDAY_LATE = datetime(2026, 11, 23, 18, 20, tzinfo=UTC)  # Mon 23 Nov, 23:50 IST
TUESDAY = datetime(2026, 11, 24, 3, 30, tzinfo=UTC)  # Tue 24 Nov, 09:00 IST
WEEK = "WEEKLY:2026-11-22"


def _run(key):
    db.session.expire_all()
    return db.session.scalar(sa.select(m.PayoutRun).where(m.PayoutRun.key == key))


def _dies_on(monkeypatch, provider_id):
    """``create_payout`` killed (the runner's process) at this provider's turn."""
    original = runs.create_payout

    def die(pid, **kwargs):
        if pid == provider_id:
            raise RuntimeError("the runner's process was killed")
        return original(pid, **kwargs)

    monkeypatch.setattr(runs, "create_payout", die)
    return original


# --- a run cut short ---------------------------------------------------------------------


def test_a_weekly_run_cut_short_late_on_monday_is_resumed_by_tuesdays_tick(world, x, monkeypatch):
    """The runner died at 23:50 IST on Monday after paying the first provider; its claim ran
    out at 00:00, and Tuesday's ticks only looked at Tuesday's keys (no WEEKLY run is due on
    a Tuesday): ``WEEKLY:2026-11-22`` stayed OPEN for good and the second provider's ₹1,000
    waited a week. Now the next tick takes over any OPEN run whose claim ran out."""
    with time_machine.travel(MONDAY_LATE, tick=True):
        (a, ua), (b, ub) = (world.ready_provider("WEEKLY", commission_bps=0) for _ in range(2))
        world.earn(a, ua, 100_000)
        world.earn(b, ub, 100_000)
        original = _dies_on(monkeypatch, b.id)
        with pytest.raises(RuntimeError):  # paid a, killed at b
            tasks.cycles()
        db.session.rollback()
        monkeypatch.setattr(runs, "create_payout", original)
    assert _run(WEEK).status == "OPEN"
    with time_machine.travel(TUESDAY, tick=True):
        assert WEEK in tasks.cycles()  # the periodic job's tick, every 15 minutes
        run = _run(WEEK)
        assert (run.status, run.payouts_created, run.claimed_by) == ("DONE", 2, None)
        assert [p.gross for p in payouts_of(a.id)] == [100_000]
        assert [p.gross for p in payouts_of(b.id)] == [100_000]
        assert payable(b.id) == 0
        assert WEEK not in tasks.cycles()  # done: the next tick leaves it


def test_a_run_still_claimed_is_left_to_its_runner(ctx):
    """An OPEN run of an earlier period is resumed only once its runner's claim ran out:
    while the claim lasts, its runner is alive and goes on."""
    claimed_until = TUESDAY + timedelta(minutes=5)
    db.session.add(
        m.PayoutRun(
            key="WEEKLY:2026-11-15",
            schedule="WEEKLY",
            period_end=date(2026, 11, 15),
            status="OPEN",
            skipped=[],
            claimed_by="alive",
            claimed_until=claimed_until,
        )
    )
    db.session.commit()
    before = runs.due_runs(claimed_until - timedelta(seconds=1))
    after = runs.due_runs(claimed_until + timedelta(seconds=1))
    assert "WEEKLY:2026-11-15" not in {due.key for due in before}
    assert after[0] == ("WEEKLY", date(2026, 11, 15), "WEEKLY:2026-11-15")  # oldest first


def test_an_admins_run_that_stopped_is_finished_by_the_next_tick(world, x, monkeypatch):
    """An admin's "Run now" has a key of its own (by the minute): a runner that died in it
    left it OPEN for good, the scheduler only ever ran the period's keys."""
    sunday = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)  # 11:30 IST
    with time_machine.travel(sunday, tick=True):
        (a, ua), (b, ub) = (world.ready_provider("WEEKLY", commission_bps=0) for _ in range(2))
        world.earn(a, ua, 100_000)
        world.earn(b, ub, 100_000)
        original = _dies_on(monkeypatch, b.id)
        with pytest.raises(RuntimeError):
            runs.run_cycle("WEEKLY", runs.ist_today(), by_hand=True)
        db.session.rollback()
        monkeypatch.setattr(runs, "create_payout", original)
    key = "WEEKLY:admin:2026-11-22T11:30"
    with time_machine.travel(sunday + runs.CLAIM_FOR + timedelta(minutes=5), tick=True):
        assert key in tasks.cycles()
        run = _run(key)
        assert (run.status, run.payouts_created) == ("DONE", 2)
        assert [p.run_id for p in payouts_of(b.id)] == [run.id]


# --- a due day missed --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "missed", "next_day", "key"),
    [
        ("WEEKLY", MONDAY_LATE, TUESDAY, WEEK),
        (
            "MONTHLY",
            datetime(2026, 12, 1, 6, 0, tzinfo=UTC),
            datetime(2026, 12, 2, 6, 0, tzinfo=UTC),
            "MONTHLY:2026-11-30",
        ),
    ],
)
def test_a_cycle_whose_due_day_the_scheduler_missed_runs_the_next_day(
    world, x, schedule, missed, next_day, key
):
    """The scheduler was down all of the due day (Monday, the 1st): the cycle was never
    started, and the next due day was a week (a month) away. Now the latest period's run is
    due until it is done, under the period's key: it runs once."""
    with time_machine.travel(missed, tick=True):
        provider, user = world.ready_provider(schedule, commission_bps=0)
        world.earn(provider, user, 100_000)
    with time_machine.travel(next_day, tick=True):
        assert key in tasks.cycles()
        assert _run(key).status == "DONE"
        assert [p.gross for p in payouts_of(provider.id)] == [100_000]
        world.earn(provider, user, 100_000)
        assert key not in tasks.cycles()  # once: what came after waits for the next cycle
    assert len(payouts_of(provider.id)) == 1 and payable(provider.id) == 100_000


def test_only_the_latest_missed_period_is_caught_up(ctx):
    """A run pays the whole payable, so the latest missed period's run pays what every
    missed one would have: no run for the weeks before it."""
    wednesday = datetime(2026, 12, 9, 6, 0, tzinfo=UTC)  # two Mondays missed
    keys = {due.key for due in runs.due_runs(wednesday)}
    assert keys == {"WEEKLY:2026-12-06", "MONTHLY:2026-11-30", "INSTANT:2026-12-08"}


@pytest.mark.postgres
def test_two_ticks_at_once_take_a_stopped_run_over_once(pg_app, monkeypatch):
    """Two schedulers tick at once after a runner died: both find the stopped run, one
    takes it over (the conditional UPDATE of the claim), the other leaves it; each
    remaining provider has one turn."""
    from tests.booking.factories import build_world
    from tests.threads import run_together

    period_end = date(2026, 11, 22)
    with pg_app.app_context():
        build_world(n_doctors=3)
        db.session.execute(sa.update(Provider).values(payout_schedule="WEEKLY"))
        ids = db.session.scalars(sa.select(Provider.id).order_by(Provider.id)).all()
        db.session.add(
            m.PayoutRun(
                key=runs.run_key("WEEKLY", period_end),
                schedule="WEEKLY",
                period_end=period_end,
                status="OPEN",
                skipped=[],
                claimed_by="dead-runner",
                claimed_until=MONDAY_LATE,
                last_provider_id=ids[0],
                providers_considered=1,
                carried_forward=1,
            )
        )
        db.session.commit()
        db.session.remove()
    turns, lock = [], threading.Lock()
    other_done = threading.Event()

    def turn(provider_id, **kwargs):
        with lock:
            turns.append(provider_id)
        other_done.wait(5)  # the other tick finishes while this one holds the run
        return Skipped(provider_id, "carried forward (test)")

    monkeypatch.setattr(runs, "create_payout", turn)

    def tick():
        try:
            return tasks.cycles()
        finally:
            other_done.set()

    with time_machine.travel(TUESDAY, tick=True):
        results = run_together(pg_app, tick, tick)
    assert all(isinstance(r, list) for r in results), results
    assert sorted(turns) == ids[1:], turns
    with pg_app.app_context():
        run = db.session.scalar(sa.select(m.PayoutRun).where(m.PayoutRun.key == WEEK))
        counts = (run.status, run.providers_considered, run.carried_forward)
        assert counts == ("DONE", len(ids), len(ids)), counts


# --- a deactivated provider -------------------------------------------------------------


def _deactivate(provider):
    """As the admin's provider form saves a deactivation (allowed: no bookings ahead)."""
    db.session.execute(sa.update(Provider).where(Provider.id == provider.id).values(active=False))
    db.session.commit()


def test_a_deactivated_provider_is_paid_what_they_earned(world, x):
    """A provider completed their last appointment (₹1,000 earned) and left; the admin
    deactivated them (allowed: no bookings ahead). Runs chose active providers only, so the
    ₹1,000 stayed on their payable for good, not even listed among the run's skips."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    _deactivate(provider)
    run = runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()
    assert (run.status, run.payouts_created, run.providers_considered) == ("DONE", 1, 1)
    (payout,) = payouts_of(provider.id)
    assert (payout.gross, payout.status) == (100_000, "PROCESSED")
    assert payable(provider.id) == 0
    again = runs.run_cycle("WEEKLY", date(2026, 11, 8))  # paid: no longer considered
    assert (again.providers_considered, again.skipped) == (0, [])


def test_a_deactivated_provider_without_an_account_is_listed_with_the_reason(world):
    provider, user = world.provider("WEEKLY", commission_bps=0)  # no bank account or UPI
    world.earn(provider, user, 100_000)
    _deactivate(provider)
    run = runs.run_cycle("WEEKLY", date(2026, 11, 1))
    assert run.skipped == [
        {"provider_id": provider.id, "reason": MSG_NO_ACCOUNT, "balance": 100_000}
    ]
    assert payable(provider.id) == 100_000


def test_deactivated_providers_owed_nothing_cost_a_run_no_statement(world):
    """Who is owed is read with the providers, in the run's one statement: a run does not
    ask each deactivated provider's balance in a query of its own."""

    def inactive():
        _deactivate(world.provider("WEEKLY")[0])

    inactive()
    with counted_queries() as few:
        run = runs.run_cycle("WEEKLY", date(2026, 11, 1))
    for _ in range(4):
        inactive()
    with counted_queries() as more:
        later = runs.run_cycle("WEEKLY", date(2026, 11, 8))
    assert run.providers_considered == later.providers_considered == 0
    assert len(more) == len(few), (len(few), len(more))


def test_a_run_that_fails_does_not_hold_up_the_others(world, x, monkeypatch):
    """Review of the catch-up (session 26): a stopped run is now listed first at every tick,
    and the tick stopped at the first run that raised, so one run failing for good (a bug,
    a bad row) would have kept every later run, of every schedule, from ever being made.
    Now the tick goes on past it and reports it failed at the end (the job's failure, retried
    at the next tick)."""
    with time_machine.travel(MONDAY_LATE, tick=True):
        monthly, user = world.ready_provider("MONTHLY", commission_bps=0)
        world.earn(monthly, user, 100_000)
        original = runs.run_cycle

        def weekly_fails(schedule, *args, **kwargs):
            if schedule == "WEEKLY":
                raise RuntimeError("the weekly run is broken")
            return original(schedule, *args, **kwargs)

        monkeypatch.setattr(runs, "run_cycle", weekly_fails)
        with pytest.raises(RuntimeError, match="WEEKLY:2026-11-22"):
            tasks.cycles()
        db.session.rollback()
        assert _run("MONTHLY:2026-10-31").status == "DONE"
        assert [p.gross for p in payouts_of(monthly.id)] == [100_000]
