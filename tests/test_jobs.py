"""The outbox and the job runner: work leaves only after the commit, runs once, retries."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.db import unit_of_work, utcnow
from portal.extensions import db
from portal.notify.mail import queue_mail
from portal.notify.models import Delivery, MailMessage
from portal.outbox import OutboxItem

CALLS = []


@jobs.job("test.record")
def _record(value, fail_times=0):
    CALLS.append(value)
    if CALLS.count(value) <= fail_times:
        raise RuntimeError("transient")


@jobs.job("test.read_policy")
def _read_policy():
    from portal.config import policy

    CALLS.append(policy().platform_fee_bps)


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.clear()


def test_rolled_back_work_never_runs(ctx):
    jobs.enqueue("test.record", value="a")
    db.session.rollback()
    db.session.commit()
    assert CALLS == []
    assert db.session.scalar(sa.select(sa.func.count(OutboxItem.id))) == 0


def test_committed_work_runs_once_after_the_commit(ctx):
    jobs.enqueue("test.record", value="b")
    assert CALLS == []  # not before the commit
    db.session.commit()
    assert CALLS == ["b"]
    item = db.session.scalar(sa.select(OutboxItem))
    assert item.done_at is not None and item.attempts == 1
    jobs.run_outbox_item(item.id)  # a second delivery of the same item changes nothing
    assert CALLS == ["b"]


def test_dedupe_key_makes_work_happen_once(ctx):
    first = jobs.enqueue("test.record", value="c", dedupe_key="once")
    assert isinstance(first, int)
    # Asked again in the same transaction: the key is taken, nothing more is written.
    assert jobs.enqueue("test.record", value="c", dedupe_key="once") is None
    db.session.commit()
    assert jobs.enqueue("test.record", value="c", dedupe_key="once") is None
    db.session.commit()
    assert CALLS == ["c"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxItem)) == 1


def test_failure_is_recorded_and_retried_later(ctx):
    jobs.enqueue("test.record", value="d", fail_times=1)
    db.session.commit()
    item = db.session.scalar(sa.select(OutboxItem))
    assert item.done_at is None and item.attempts == 1 and "transient" in item.last_error
    assert item.dispatched_at is None  # due again after the backoff, for the sweep
    assert jobs.sweep_outbox() == 0  # not due yet: it backs off
    with time_machine.travel(utcnow() + timedelta(minutes=1), tick=False):
        assert jobs.sweep_outbox() == 1
    db.session.expire_all()
    item = db.session.get(OutboxItem, item.id)
    assert item.done_at is not None and item.attempts == 2
    assert CALLS == ["d", "d"]


def test_delayed_work_waits_for_its_time(ctx):
    jobs.enqueue("test.record", value="e", run_after=utcnow() + timedelta(hours=1))
    db.session.commit()
    assert CALLS == []
    with time_machine.travel(utcnow() + timedelta(hours=1, seconds=1), tick=False):
        jobs.sweep_outbox()
    assert CALLS == ["e"]


def test_mail_is_logged_in_embedded_mode(ctx):
    message_id = queue_mail("someone@example.com", "Hello", "Body text")
    db.session.commit()
    stored = db.session.get(MailMessage, message_id)
    assert stored.status == "logged" and stored.sent_at is not None and stored.attempts == 1
    delivery = db.session.scalar(sa.select(Delivery).where(Delivery.mail_id == message_id))
    assert (delivery.status, delivery.attempts, delivery.provider_ref) == ("sent", 1, "console")
    assert delivery.sent_at is not None


def test_work_waits_for_the_outer_commit_not_a_savepoint(ctx):
    db.session.execute(sa.select(1))
    with db.session.begin_nested():
        jobs.enqueue("test.record", value="f")
    assert CALLS == []  # released savepoint: nothing is handed over yet
    db.session.commit()
    assert CALLS == ["f"]


def test_one_retry_schedule_backs_off_exponentially():
    assert [jobs.retry_delay(n) for n in range(1, 8)] == [30, 120, 480, 1920, 7680, 30720, 30720]


def test_jobs_are_routed_to_the_queue_their_name_names():
    assert jobs.queue_for("notify.send_mail") == "notify"
    assert jobs.queue_for("payouts.send") == "payouts"
    assert jobs.queue_for("payments.cancel_link") == "payments"
    assert jobs.queue_for("refunds.execute") == "payments"
    assert jobs.queue_for("gateway.process_webhook") == "payments"
    assert jobs.queue_for("booking.rescheduled") == "default"
    assert jobs.queue_for("jobs.sweep_outbox") == "default"
    assert set(jobs.QUEUE_OF.values()) <= set(jobs.QUEUES)

    @jobs.job("test.routed", queue="payouts")
    def routed():
        pass

    assert jobs.queue_for("test.routed") == "payouts"
    with pytest.raises(ValueError, match="unknown queue"):
        jobs.job("test.nowhere", queue="bulk")(routed)


def test_the_last_failure_gives_up_and_is_raised(ctx):
    """Inline runs never raise; the worker's call (reraise) raises only the give-up, so RQ
    keeps in its failed registry exactly the jobs that gave up."""
    jobs.enqueue("test.record", value="g", fail_times=99)
    db.session.commit()
    item = db.session.scalar(sa.select(OutboxItem))
    jobs.run_outbox_item(item.id)  # attempt 2 of 8: recorded, not raised
    db.session.expire_all()
    assert db.session.get(OutboxItem, item.id).attempts == 2
    db.session.get(OutboxItem, item.id).attempts = jobs.MAX_ATTEMPTS - 1
    db.session.commit()
    with pytest.raises(jobs.GaveUp, match="failed 8 times"):
        jobs.run_outbox_item(item.id)
    db.session.expire_all()
    assert db.session.get(OutboxItem, item.id).attempts == jobs.MAX_ATTEMPTS
    assert jobs.sweep_outbox() == 0  # given up: only an admin's retry runs it again


def test_an_item_rolled_back_with_its_savepoint_is_not_handed_over(ctx):
    """SQLite gives a rolled-back row's id to the next insert: the rolled-back item's id,
    handed over after the commit, would run that later item at once, before it is due."""
    with unit_of_work():
        try:
            with unit_of_work():  # a SAVEPOINT
                jobs.enqueue("test.record", value="gone")
                raise RuntimeError("the nested use case fails")
        except RuntimeError:
            pass
        jobs.enqueue("test.record", value="later", run_after=utcnow() + timedelta(hours=1))
        kept = jobs.enqueue("test.record", value="now")
    assert CALLS == ["now"]  # not "gone" (rolled back), not "later" (not due)
    assert db.session.get(OutboxItem, kept).done_at is not None


def test_a_job_reads_the_policy_stamp_with_its_claim(ctx):
    """Most jobs read the policy: its stamp comes with the claim of the outbox row, so a job
    that only reads the policy costs the claim and the done mark, nothing more. Each item
    of an RQ job (several in one app context) keeps what its own claim read."""
    from portal.policies import store as policy_store
    from portal.policies.models import PolicyStamp
    from portal.policies.store import STAMP_ID
    from tests.querycount import counted_queries

    db.session.merge(PolicyStamp(id=STAMP_ID, token="first"))
    first = jobs.enqueue("test.read_policy", run_after=utcnow() + timedelta(hours=1))
    second = jobs.enqueue("test.read_policy", run_after=utcnow() + timedelta(hours=1))
    db.session.commit()
    policy_store.in_force()  # the process has read the versions under this stamp
    with counted_queries() as statements:
        jobs.run_outbox_item(first)
    assert len(statements) == 2, [s.split("\n")[0][:90] for s in statements]
    assert "policy_stamp" in statements[0]  # read with the claim
    # Another process bumps the stamp between two items of one RQ job (one app context):
    # the second item's claim sees it, and the job reads the versions again.
    with db.engine.begin() as conn:
        conn.execute(
            sa.update(PolicyStamp).where(PolicyStamp.id == STAMP_ID).values(token="elsewhere")
        )
    with counted_queries() as statements:
        jobs.run_outbox_item(second)
    assert any("policy_versions" in s for s in statements), statements
    assert len(CALLS) == 2


# --- the schedule: the embedded ticker and `flask jobs tick` ----------------------------------


def test_the_embedded_scheduler_runs_every_periodic_job_at_its_first_tick(app, monkeypatch):
    """``start_inline_ticker`` (``make run``) ran a job when ``time.monotonic() - last.get(name,
    0) >= every``: ``monotonic`` counts from the machine's boot, so on a machine up for half
    an hour the daily ``settlements.fetch`` did not run at the first tick (nor for the rest
    of the first day of uptime). A job that never ran is due at the first tick, as RQ's
    cron does it; then each waits its period."""
    import threading
    import time as real_time
    from types import SimpleNamespace

    ran = []
    monkeypatch.setattr(
        jobs,
        "PERIODIC",
        {"test.daily": (24 * 3600, lambda: None), "test.minutely": (60, lambda: None)},
    )
    monkeypatch.setattr(jobs, "run_periodic", lambda name: ran.append(name))
    clock = [1800.0]  # the machine has been up half an hour
    passes, parked = [], threading.Event()

    def sleep(_seconds):
        passes.append(list(ran))
        if len(passes) >= 3:
            parked.set()
            threading.Event().wait()  # the ticker's (daemon) thread stays parked
        clock[0] += 61

    fake = SimpleNamespace(monotonic=lambda: clock[0], sleep=sleep, time=real_time.time)
    monkeypatch.setattr(jobs, "time", fake)
    jobs.start_inline_ticker(app)
    assert parked.wait(10)
    first, second, third = passes
    assert sorted(first) == ["test.daily", "test.minutely"], f"first tick ran only {first}"
    assert second == first + ["test.minutely"]  # 61 s on: the minutely one only
    assert third == second + ["test.minutely"]


def test_jobs_tick_runs_the_other_periodic_jobs_when_one_fails(app, monkeypatch):
    """README: ``flask --app wsgi jobs tick`` "run every periodic job once (what the
    scheduler does)". The scheduler runs each job on its own; the command stopped at the
    first exception, skipping every job sorted after it. It runs them all, names each
    failure, and exits non-zero at the end."""
    ran = []

    def run_periodic(name):
        ran.append(name)
        if name in ("exports.sweep", "payouts.cycles"):
            raise PermissionError(13, "Permission denied", "/exports/7.csv")
        return 0

    monkeypatch.setattr(jobs, "run_periodic", run_periodic)
    result = app.test_cli_runner().invoke(args=["jobs", "tick"])
    assert ran == sorted(jobs.PERIODIC)
    assert result.exit_code == 1, result.output
    assert "exports.sweep: failed: PermissionError" in result.output
    assert "payouts.cycles: failed: PermissionError" in result.output
    assert "2 of" in result.output and "failed" in result.output.splitlines()[-1]
    ok = app.test_cli_runner().invoke(args=["jobs", "tick", "--only", "jobs.sweep_outbox"])
    assert ok.exit_code == 0 and ok.output.strip() == "jobs.sweep_outbox: 0"
