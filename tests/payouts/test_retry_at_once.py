"""The scheduler's periodic ``payouts.retries`` and the job thread's ``payouts.retry`` item
(queued by the failure for the same moment) retry the same FAILED payout at once. On
SQLite the periodic one read FAILED in autocommit, the job committed attempt 2, and its
write went on from what it had read: the attempts' unique constraint failed the whole
tick (docs/architecture.md, "The embedded mode"). One of them retries; neither fails."""

import threading
from datetime import timedelta

import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.db import utcnow
from portal.domain.states import PayoutStatus
from portal.extensions import db
from portal.outbox import OutboxItem
from portal.payouts import sending
from portal.payouts.common import RETRY_JOB
from tests.payouts.conftest import payouts_of
from tests.threads import run_together


def test_the_periodic_retry_and_the_retry_job_at_once_fail_neither(app, world, x, monkeypatch):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="failed")
    world.earn(provider, user, 100_000)
    x.settle(rounds=1)
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.FAILED and payout.attempts == 1
    payout_id, provider_id = payout.id, provider.id
    item_id = db.session.scalar(
        sa.select(OutboxItem.id).where(OutboxItem.job == RETRY_JOB, OutboxItem.done_at.is_(None))
    )
    assert item_id is not None
    x.sandbox.set_faults(payout_outcome="processed")
    db.session.commit()
    db.session.remove()

    periodic_read, job_done = threading.Event(), threading.Event()
    periodic_thread = {}
    real_current_attempt = sending.current_attempt

    def current_attempt(p):
        found = real_current_attempt(p)
        if threading.get_ident() == periodic_thread.get("id"):
            periodic_read.set()
            job_done.wait(3)  # (with a fix the job waits for this one instead)
        return found

    monkeypatch.setattr(sending, "current_attempt", current_attempt)

    with time_machine.travel(utcnow() + timedelta(minutes=6), tick=True):

        def periodic():  # the scheduler thread: jobs.run_periodic("payouts.retries")
            periodic_thread["id"] = threading.get_ident()
            try:
                return jobs.run_periodic("payouts.retries")
            except Exception as exc:  # noqa: BLE001
                return repr(exc)[:160]

        def job():  # the job thread: the outbox item handed over by the sweep
            assert periodic_read.wait(20)
            try:
                jobs.run_outbox_item(item_id, reraise=False)
            finally:
                job_done.set()
            return db.session.scalar(
                sa.select(OutboxItem.last_error).where(OutboxItem.id == item_id)
            )

        periodic_result, job_result = run_together(app, periodic, job)
    print("periodic:", periodic_result, "job:", job_result)
    with app.app_context():
        (payout,) = payouts_of(provider_id)
        print("payout", payout_id, payout.status, "attempts", payout.attempts)
        db.session.remove()
    assert periodic_result in (0, 1), periodic_result
    assert job_result is None, job_result
