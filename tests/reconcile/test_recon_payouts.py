"""Payouts in a run: our side is dated by the request that made the payout at RazorpayX
(``PayoutAttempt.last_request_at``), not by when the attempt's row was created; the
window is read by that time too."""

from datetime import UTC, date, datetime, timedelta

import time_machine

from portal.domain.states import PayoutStatus
from portal.extensions import db
from portal.jobs import sweep_outbox
from portal.payouts import gateway as payouts_gateway
from portal.payouts import runs
from portal.reconcile import run as recon
from portal.reconcile.models import ReconCase
from portal.reconcile.window import day_window
from tests.payouts.conftest import (  # noqa: F401
    _ledger_balances_after_each_test,
    payouts_of,
    world,
    x,
)

TUESDAY = datetime(2026, 11, 3, 5, 0, tzinfo=UTC)  # Tue 3 Nov 2026, 10:30 IST
BEFORE_MIDNIGHT = datetime(2026, 11, 3, 18, 28, tzinfo=UTC)  # Tue 3 Nov 2026, 23:58 IST


def _run_day(x, day):
    """A run of the day as the schedule makes it: its own source, which reads RazorpayX
    through the engine's adapter (here the ``x`` sandbox)."""
    start, end = day_window(day, day)
    run = recon.start_run(start, end, trigger=recon.ADMIN)
    run = recon.execute(run.id)
    assert run.status == "finished", run.error
    db.session.expire_all()
    query = db.select(ReconCase).where(ReconCase.kind == "payout").order_by(ReconCase.id)
    return db.session.scalars(query).all()


def _paid_after_three_500s(world, x, traveller, started):
    """RazorpayX answers 500 to the first three requests (nothing made); the resends under
    the same key (30 s, 60 s, 120 s, picked up by the next sweeps) and the fourth request
    makes it six minutes after the run."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.sandbox.set_faults(fail_next=3, error_status=500, match="POST /v1/payouts")
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    for minutes in (1, 3, 6):
        traveller.move_to(started + timedelta(minutes=minutes))
        sweep_outbox()
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and len(x.payouts()) == 1
    (attempt,) = payout.attempt_rows
    assert attempt.requests == 4
    assert attempt.last_request_at - attempt.created_at >= timedelta(minutes=5)
    return payout


def test_a_payout_made_after_minutes_of_razorpayx_errors_is_matched(world, x):
    with time_machine.travel(TUESDAY, tick=True) as traveller:
        _paid_after_three_500s(world, x, traveller, datetime.now(UTC))
        traveller.move_to(TUESDAY + timedelta(hours=3))
        (case,) = _run_day(x, date(2026, 11, 3))
        assert (case.status, case.reason) == ("matched", None), (case.status, case.reason)


def test_a_payout_sent_after_midnight_belongs_to_the_next_day(world, x):
    """Its row was created at 23:58 (clinic time), the request that made it went at 00:04:
    the next day's run matches it; the day before has nothing of it (not time_differs,
    and a re-run of that day does not reopen the matched case)."""
    with time_machine.travel(BEFORE_MIDNIGHT, tick=True) as traveller:
        _paid_after_three_500s(world, x, traveller, datetime.now(UTC))
        traveller.move_to(BEFORE_MIDNIGHT + timedelta(hours=3))
        assert _run_day(x, date(2026, 11, 3)) == []
        (case,) = _run_day(x, date(2026, 11, 4))
        assert (case.status, case.reason) == ("matched", None), (case.status, case.reason)
        (again,) = _run_day(x, date(2026, 11, 3))
        assert (again.id, again.status) == (case.id, "matched")


def test_a_run_reads_razorpayx_through_the_engines_rate_limited_adapter(world, x, app):
    """Every RazorpayX call takes a token (docs/payouts.md, "Rate limit"), a run's pages
    and fetches too, and a run reads the adapter the payout engine uses (review finding:
    it built its own from ``get_payouts()``, past the bucket; with the sandbox installed
    as the engine's adapter, a clean run reported its processed payout missing at the
    gateway, and these tests gave the run a source of their own)."""
    with time_machine.travel(TUESDAY, tick=True) as traveller:
        _paid_after_three_500s(world, x, traveller, datetime.now(UTC))
        traveller.move_to(TUESDAY + timedelta(hours=3))
        bucket = payouts_gateway.bucket(app)
        taken = bucket.acquired
        (case,) = _run_day(x, date(2026, 11, 3))
        assert (case.status, case.reason) == ("matched", None), (case.status, case.reason)
        assert bucket.acquired >= taken + 2  # the payouts' page and the empty page after it
