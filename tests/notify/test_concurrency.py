"""Several workers, one delivery: racing schedulers and senders on PostgreSQL, and a worker
killed mid-job whose work is retried and still delivered once."""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.extensions import db
from portal.notify.models import Delivery, MailMessage, Notification, Reminder, ReminderStatus
from portal.notify.reminders import schedule_reminders, send_reminder
from portal.outbox import OutboxItem
from tests.notify.factories import NOW, build_world, make_booking
from tests.plugin import PROD_SECRETS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def pg_world(pg_app):
    with pg_app.app_context():
        with time_machine.travel(NOW, tick=False):
            yield build_world()
        db.session.remove()


def _counts(app):
    with app.app_context():
        reminders = db.session.scalar(
            sa.select(sa.func.count(Reminder.id)).where(Reminder.status == ReminderStatus.SENT)
        )
        notices = db.session.scalar(
            sa.select(sa.func.count(Notification.id)).where(Notification.kind == "reminder")
        )
        in_app = db.session.scalars(
            sa.select(Delivery.reminder_id).where(
                Delivery.channel == "in_app", Delivery.reminder_id.is_not(None)
            )
        ).all()
        db.session.remove()
        return reminders, notices, in_app


@pytest.mark.postgres
def test_two_schedulers_racing_send_each_reminder_once(pg_app, pg_world):
    """Two workers tick the scheduler at the same moment over the same 40 due reminders;
    each runs the send jobs it queued. Every reminder is sent exactly once."""
    with pg_app.app_context():
        for i in range(20):
            booking = make_booking(pg_world, NOW + timedelta(hours=2, minutes=30 * i % 600))
            schedule_reminders(booking, now=NOW)
        db.session.commit()
        db.session.execute(
            sa.update(Reminder)
            .where(Reminder.offset_key == "1h")
            .values(due_at=NOW - timedelta(minutes=1))
        )
        db.session.commit()
        due = db.session.scalar(
            sa.select(sa.func.count(Reminder.id)).where(Reminder.offset_key == "1h")
        )
        db.session.remove()
    assert due == 40
    barrier = threading.Barrier(4)
    claimed, errors = [], []

    def worker():
        try:
            with pg_app.app_context():
                barrier.wait()
                claimed.append(jobs.run_periodic("notify.send_due_reminders"))
                db.session.remove()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    with time_machine.travel(NOW, tick=False):
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == []
    assert sum(claimed) == 40
    sent, notices, in_app = _counts(pg_app)
    assert (sent, notices) == (40, 40)
    assert len(in_app) == len(set(in_app)) == 40


@pytest.mark.postgres
def test_two_senders_racing_over_one_reminder_send_it_once(pg_app, pg_world):
    """Even when the same send job is run by two workers at once (a re-dispatch while the
    first still runs), the row lock and the status re-check let exactly one send."""
    with pg_app.app_context():
        booking = make_booking(pg_world, NOW + timedelta(minutes=45))
        schedule_reminders(booking, now=NOW - timedelta(hours=1))
        reminder_ids = db.session.scalars(
            sa.select(Reminder.id).where(Reminder.offset_key == "1h")
        ).all()
        db.session.execute(
            sa.update(Reminder)
            .where(Reminder.id.in_(reminder_ids))
            .values(status=ReminderStatus.QUEUED)
        )
        db.session.commit()
        db.session.remove()
    barrier = threading.Barrier(6)
    errors = []

    def sender(reminder_id):
        try:
            with pg_app.app_context():
                barrier.wait()
                send_reminder(reminder_id)
                db.session.commit()
                db.session.remove()
        except Exception as exc:
            errors.append(exc)

    with time_machine.travel(NOW, tick=False):
        threads = [
            threading.Thread(target=sender, args=(rid,)) for rid in reminder_ids for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == []
    sent, notices, in_app = _counts(pg_app)
    assert (sent, notices, sorted(in_app)) == (2, 2, sorted(reminder_ids))


# --- a real worker killed mid-job -------------------------------------------------------------


def _children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _waiting_on_a_lock(conn):
    count = conn.execute(
        sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
    ).scalar()
    conn.rollback()  # pg_stat_activity is a snapshot per transaction
    return count


@pytest.mark.postgres
@pytest.mark.redis
def test_worker_killed_mid_job_is_retried_and_delivers_once(pg_app):
    """A real `flask rq worker` takes a reminder's send job and is SIGKILLed (with its
    work-horse) while the job runs. Nothing it did is committed; the outbox sweep hands the
    item over again, a second worker runs it, and there is exactly one delivery."""
    from redis import Redis

    from portal import create_app
    from tests.conftest import _test_config

    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        Redis.from_url(redis_url).flushdb()
    except Exception as exc:
        pytest.fail(f"Redis is needed for this test and is not reachable at {redis_url}: {exc}")
    database = pg_app.config["SQLALCHEMY_DATABASE_URI"]
    app = create_app(
        _test_config(
            database, JOBS_INLINE=False, RQ_CONNECTION=redis_url, REDIS_URL=redis_url, RQ_ASYNC=True
        )
    )
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        **PROD_SECRETS,
        "PYTHONPATH": ROOT,
    }
    command = [sys.executable, "-m", "flask", "--app", "tests.notify.worker_app", "rq", "worker"]
    with app.app_context():
        world = build_world(tag="-kill")
        from portal.db import utcnow

        now = utcnow()
        booking = make_booking(world, now + timedelta(minutes=50))
        schedule_reminders(booking, now=now - timedelta(hours=1))
        db.session.commit()
        patient_reminder = db.session.scalar(
            sa.select(Reminder.id).where(
                Reminder.offset_key == "1h", Reminder.recipient_id == world.patient
            )
        )
        # Only the patient's 1 h reminder is due.
        db.session.execute(
            sa.update(Reminder)
            .where(Reminder.id != patient_reminder)
            .values(due_at=now + timedelta(hours=5))
        )
        db.session.commit()
        engine = db.engine
        assert jobs.run_periodic("notify.send_due_reminders") == 1
        item_id = db.session.scalar(
            sa.select(OutboxItem.id).where(OutboxItem.job == "notify.send_reminder")
        )
        queue = app.extensions["rq"].get_queue("notify")
        assert f"outbox-{item_id}" in queue.job_ids
        db.session.remove()

        blocker = engine.connect()
        blocker_tx = blocker.begin()
        worker = None
        horses = []
        try:
            # Hold the reminder's row lock: the worker's send job will wait on it, mid-job.
            blocker.execute(
                sa.text("SELECT id FROM reminders WHERE id = :id FOR UPDATE"),
                {"id": patient_reminder},
            )
            log_file = open(os.environ.get("NOTIFY_WORKER_LOG", os.devnull), "wb")  # noqa: SIM115  (closed with the worker)
            worker = subprocess.Popen(
                command,
                env=env,
                cwd=ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log_file.close()
            with engine.connect() as probe:
                deadline = time.monotonic() + 90
                while not _waiting_on_a_lock(probe):
                    assert worker.poll() is None, "the worker exited"
                    assert time.monotonic() < deadline, "the worker never started the job"
                    time.sleep(0.2)
            horses = _children(worker.pid)  # none: the worker runs jobs in its own process
            os.kill(worker.pid, signal.SIGKILL)
            for pid in horses:
                os.kill(pid, signal.SIGKILL)
            worker.wait(10)
        finally:
            if worker is not None and worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
            for pid in horses:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            blocker_tx.rollback()
            blocker.close()
        with engine.connect() as probe:  # the killed horse's session is gone
            deadline = time.monotonic() + 30
            while _waiting_on_a_lock(probe) and time.monotonic() < deadline:
                time.sleep(0.1)

        # Killed before its commit: nothing happened, the item is still to do.
        reminder = db.session.get(Reminder, patient_reminder)
        item = db.session.get(OutboxItem, item_id)
        assert reminder.status == ReminderStatus.QUEUED and item.done_at is None
        assert (
            db.session.scalar(
                sa.select(sa.func.count(Delivery.id)).where(
                    Delivery.reminder_id == patient_reminder
                )
            )
            == 0
        )
        db.session.remove()

        # Once its lease runs out the sweep hands it over again (the killed job is stale);
        # a fresh worker runs it (and the mail it queues).
        lease = timedelta(seconds=jobs.DISPATCH_LEASE_SECONDS + 1)
        with time_machine.travel(utcnow() + lease, tick=False):
            assert jobs.sweep_outbox() >= 1
        done = subprocess.run(
            command + ["--burst"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr[-3000:]
        # The mail job was queued by the send job's commit: run it too.
        jobs.sweep_outbox()
        done = subprocess.run(
            command + ["--burst"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr[-3000:]

        db.session.expire_all()
        assert db.session.get(Reminder, patient_reminder).status == ReminderStatus.SENT
        assert db.session.get(OutboxItem, item_id).done_at is not None
        deliveries = db.session.scalars(
            sa.select(Delivery).where(Delivery.reminder_id == patient_reminder)
        ).all()
        assert sorted(d.channel for d in deliveries) == ["email", "in_app", "sms"]
        assert (
            db.session.scalar(
                sa.select(sa.func.count(Notification.id)).where(Notification.kind == "reminder")
            )
            == 1
        )
        mails = db.session.scalars(
            sa.select(MailMessage).where(MailMessage.to == "patient-kill@example.com")
        ).all()
        assert [m.status for m in mails] == ["logged"]
        db.session.remove()
        engine.dispose()
    Redis.from_url(redis_url).flushdb()


@pytest.mark.postgres
def test_a_booking_being_completed_is_not_flagged_not_completed(pg_app, pg_world):
    """The sweep finds a booking still STARTED while its completion (visit locked, status
    moved, not yet committed) is under way: it waits on the visit as every use case on the
    visit's items does, reads the booking again and flags nothing. (Writing the flag from
    its first read left an open NOT_COMPLETED flag on a completed booking.)"""
    from portal.booking.attention import AttentionFlag
    from portal.notify import sweeps
    from tests.threads import wait_for_lock_waiters

    with pg_app.app_context():
        booking = make_booking(pg_world, NOW - timedelta(hours=4), status="STARTED")
        visit_id = db.session.scalar(
            sa.text("SELECT master_id FROM bookings WHERE id = :b"), {"b": booking}
        )
        db.session.remove()
        results = []

        def sweep():
            with pg_app.app_context():
                results.append(sweeps.flag_not_completed(now=NOW))
                db.session.remove()

        with db.engine.connect() as completing:
            completing.execute(
                sa.text("SELECT id FROM visits WHERE id = :v FOR UPDATE"), {"v": visit_id}
            )
            completing.execute(
                sa.text("UPDATE bookings SET status = 'COMPLETED' WHERE id = :b"), {"b": booking}
            )
            thread = threading.Thread(target=sweep)
            thread.start()
            wait_for_lock_waiters(db.engine)
            completing.commit()
            thread.join(30)
        assert results == [0]
        assert db.session.scalars(sa.select(AttentionFlag)).all() == []
        assert (
            db.session.scalars(
                sa.select(Notification).where(Notification.kind == "alert.NOT_COMPLETED")
            ).all()
            == []
        )
        db.session.remove()
