"""The daily run: at the policy's run time, 02:00 clinic time by default (the first tick
after it), for the previous clinic day, once; a failed one is tried again a few times, then left for an admin."""

from datetime import datetime, time

import sqlalchemy as sa

from portal.config import policy
from portal.extensions import db
from portal.policies import service as policy_service
from portal.reconcile import tasks
from portal.reconcile.models import ReconRun
from tests.booking.factories import IST
from tests.reconcile.helpers import case_for, paid, payment_id


def runs():
    db.session.expire_all()
    return db.session.scalars(sa.select(ReconRun).order_by(ReconRun.id)).all()


def test_the_daily_run_covers_yesterday_once(world, users, gateway, clock):
    visit = paid(world, users, gateway)
    clock.move_to(datetime(2026, 6, 2, 1, 45, tzinfo=IST))
    assert tasks.daily() is None and not runs()  # before 02:00
    clock.move_to(datetime(2026, 6, 2, 2, 5, tzinfo=IST))
    tasks.daily()
    [run] = runs()
    assert (run.trigger, run.status, run.started_by_id) == ("schedule", "finished", None)
    assert run.window_start.astimezone(IST) == datetime(2026, 6, 1, tzinfo=IST)
    assert run.window_end.astimezone(IST) == datetime(2026, 6, 2, tzinfo=IST)
    assert case_for(payment_id(visit)).status == "matched"
    clock.move_to(datetime(2026, 6, 2, 2, 20, tzinfo=IST))
    assert tasks.daily() is None and len(runs()) == 1  # done for that day


def test_the_daily_run_waits_for_the_policys_run_time(world, users, gateway, clock):
    """/admin/policy's "Daily run (clinic time)" moves the run (it ran at 02:00 whatever
    the policy said: review finding)."""
    paid(world, users, gateway)
    policy_service.propose(
        users(world.admin), {"reconciliation_run_time": "05:00"}, reason="After the bank file"
    )
    clock.move_to(datetime(2026, 6, 2, 2, 30, tzinfo=IST))
    assert policy().reconciliation_run_time == time(5, 0)
    assert tasks.daily() is None and not runs()
    clock.move_to(datetime(2026, 6, 2, 5, 10, tzinfo=IST))
    tasks.daily()
    [run] = runs()
    assert run.window_start.astimezone(IST) == datetime(2026, 6, 1, tzinfo=IST)


def test_a_failing_daily_run_is_tried_three_times(world, users, gateway, clock, app):
    saved = app.config.get("RAZORPAY_RETRIES")
    app.config["RAZORPAY_RETRIES"] = 0
    app.extensions.pop("gateway_adapters", None)
    try:
        gateway.sandbox.set_faults(fail_next=100, error_status=503)
        clock.move_to(datetime(2026, 6, 2, 3, 0, tzinfo=IST))
        for _ in range(4):
            tasks.daily()
        assert [r.status for r in runs()] == ["failed"] * 3
        assert "refused or failed" in runs()[0].error
    finally:
        app.config.pop("RAZORPAY_RETRIES", None)
        if saved is not None:
            app.config["RAZORPAY_RETRIES"] = saved
        app.extensions.pop("gateway_adapters", None)


def test_a_day_whose_daily_run_was_missed_is_reconciled_by_a_later_tick(
    world, users, gateway, clock
):
    """Review finding (session 26): the schedule only ever ran the previous clinic day, so a
    day whose next day passed without a tick (the workers down all of 2 June) was never
    reconciled: 1 June's payment was never checked. Now the ticks after it also run the
    days missed since the last finished scheduled run (at most a week back), newest first,
    one a tick."""
    clock.move_to(datetime(2026, 6, 1, 2, 5, tzinfo=IST))
    tasks.daily()  # 31 May, as usual
    visit = paid(world, users, gateway)  # 1 June
    clock.move_to(datetime(2026, 6, 3, 2, 5, tzinfo=IST))  # no tick ran on 2 June
    tasks.daily()  # 2 June
    tasks.daily()  # 1 June, missed
    assert [r.window_start.astimezone(IST).day for r in runs()] == [31, 2, 1]
    assert case_for(payment_id(visit), kind="payment").status == "matched"
    assert tasks.daily() is None  # nothing left to catch up
    assert len(runs()) == 3


def test_days_before_the_first_scheduled_run_are_not_caught_up(world, users, gateway, clock):
    """A first install reconciles from its first day: no run for the week before it."""
    clock.move_to(datetime(2026, 6, 3, 2, 5, tzinfo=IST))
    tasks.daily()
    assert tasks.daily() is None
    assert [r.window_start.astimezone(IST).day for r in runs()] == [2]


def test_the_catch_up_reaches_as_far_back_as_the_setting(world, users, gateway, clock, app):
    """``RECON_CATCH_UP_DAYS`` (once a constant of the job): with 0, a missed day is left
    to an admin's range run."""
    saved = app.config["RECON_CATCH_UP_DAYS"]
    app.config["RECON_CATCH_UP_DAYS"] = 0
    try:
        clock.move_to(datetime(2026, 6, 1, 2, 5, tzinfo=IST))
        tasks.daily()  # 31 May, as usual
        clock.move_to(datetime(2026, 6, 3, 2, 5, tzinfo=IST))  # no tick ran on 2 June
        tasks.daily()  # 2 June
        assert tasks.daily() is None  # 1 June not caught up
        assert [r.window_start.astimezone(IST).day for r in runs()] == [31, 2]
    finally:
        app.config["RECON_CATCH_UP_DAYS"] = saved


def _settled_late_on_the_due_day(world, users, gateway, clock):
    """Monday 1 June's capture, due for settlement on Wednesday 3 June (T+2 working days);
    Razorpay settles it late that Wednesday evening, after the day's settlement fetch, so
    nothing has read it when Thursday's 02:00 run goes. Returns the visit."""
    from datetime import date

    visit = paid(world, users, gateway)  # Monday 1 June
    clock.move_to(datetime(2026, 6, 3, 21, 0, tzinfo=IST))
    assert gateway.sandbox.settle_day(date(2026, 6, 1)) is not None
    clock.move_to(datetime(2026, 6, 4, 2, 5, tzinfo=IST))  # overdue from today
    return visit


def test_the_daily_run_reads_the_settlements_before_it_judges_them(world, users, gateway, clock):
    """Known gap (docs/decisions.md, settlement by working days): the daily fetch runs
    every 24 h from the scheduler's start, so a settlement made after its read was not
    stored when the 02:00 run checked settlement: its captures were NOT_SETTLED for a day
    (a HIGH alert, the visit flagged). The run reads the latest settlements first."""
    from portal.booking import lookup
    from portal.booking.models import ATTENTION_RECONCILIATION
    from portal.settlements.models import SettlementItem

    visit = _settled_late_on_the_due_day(world, users, gateway, clock)
    pay_id = payment_id(visit)
    tasks.daily()
    [run] = runs()
    assert run.status == "finished", run.error
    assert run.error is None
    assert case_for(pay_id, kind="settlement") is None
    assert run.new_discrepancies == 0
    assert lookup.get_visit(visit.id).attention != ATTENTION_RECONCILIATION
    assert db.session.scalar(sa.select(SettlementItem).where(SettlementItem.entity_id == pay_id))


def test_settlements_that_cannot_be_read_skip_the_check_not_the_run(
    world, users, gateway, clock, app
):
    """Razorpay's settlements cannot be read when the run goes (its other lists can): the
    run finishes, says so, and raises no NOT_SETTLED case on what it could not read; the
    next run, with the settlements read, checks them."""
    saved = app.config.get("RAZORPAY_RETRIES")
    app.config["RAZORPAY_RETRIES"] = 0
    app.extensions.pop("gateway_adapters", None)
    try:
        visit = _settled_late_on_the_due_day(world, users, gateway, clock)
        gateway.sandbox.set_faults(error_rate=1.0, error_status=503, match="/v1/settlements")
        tasks.daily()
        [run] = runs()
        assert run.status == "finished", run.error
        assert "settlements could not be read" in run.error
        assert case_for(payment_id(visit), kind="settlement") is None
        assert run.new_discrepancies == 0
        # Readable again, and the settlement never made: the next run flags the capture.
        gateway.sandbox.set_faults(error_rate=0.0, match="", unsettle=[payment_id(visit)])
        clock.move_to(datetime(2026, 6, 5, 2, 5, tzinfo=IST))
        tasks.daily()
        last = runs()[-1]
        assert (last.status, last.error) == ("finished", None)
        case = case_for(payment_id(visit), kind="settlement")
        assert (case.status, case.reason) == ("discrepancy", "not_settled")
    finally:
        app.config.pop("RAZORPAY_RETRIES", None)
        if saved is not None:
            app.config["RAZORPAY_RETRIES"] = saved
        app.extensions.pop("gateway_adapters", None)
