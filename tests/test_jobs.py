"""The outbox and the job runner: work leaves only after the commit, runs once, retries."""
import os
import subprocess
import sys
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.db import utcnow
from portal.extensions import db
from portal.notify.mail import queue_mail
from portal.notify.models import MailMessage
from portal.outbox import OutboxItem

CALLS = []


@jobs.job("test.record")
def _record(value, fail_times=0):
    CALLS.append(value)
    if CALLS.count(value) <= fail_times:
        raise RuntimeError("transient")


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
    jobs.enqueue("test.record", value="c", dedupe_key="once")
    db.session.commit()
    jobs.enqueue("test.record", value="c", dedupe_key="once")
    db.session.commit()
    assert CALLS == ["c"]


def test_failure_is_recorded_and_retried_later(ctx):
    jobs.enqueue("test.record", value="d", fail_times=1)
    db.session.commit()
    item = db.session.scalar(sa.select(OutboxItem))
    assert item.done_at is None and item.attempts == 1 and "transient" in item.last_error
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
    message = queue_mail("someone@example.com", "Hello", "Body text")
    db.session.commit()
    stored = db.session.get(MailMessage, message.id)
    assert stored.status == "logged" and stored.sent_at is not None


@pytest.mark.redis
def test_rq_worker_runs_outbox_items_in_the_app_context(tmp_path):
    """Production mode: items become RQ jobs on the real Redis, and `flask rq worker`
    (a real subprocess) runs them inside the app context."""
    from redis import Redis

    from portal import create_app
    from tests.conftest import _test_config, create_schema, empty_tables

    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        Redis.from_url(redis_url).flushdb()
    except Exception as exc:
        pytest.fail(f"Redis is needed for this test and is not reachable at {redis_url}: {exc}")
    database = "sqlite:///" + str(tmp_path / "rq.sqlite3")
    app = create_app(_test_config(database, JOBS_INLINE=False, RQ_CONNECTION=redis_url,
                                  REDIS_URL=redis_url, RQ_ASYNC=True))
    create_schema(app)
    with app.app_context():
        message = queue_mail("rq@example.com", "Via RQ", "Sent by a worker")
        db.session.commit()
        message_id = message.id
        queue = app.extensions["rq"].get_queue("default")
        assert f"outbox-{message_id}" in queue.job_ids or queue.count >= 1
    env = {**os.environ, "DATABASE_URL": database, "REDIS_URL": redis_url,
           "SECRET_KEY": "x" * 32, "FLASK_APP": "wsgi"}
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "rq", "worker",
                           "--burst"], env=env, capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 0, done.stderr[-2000:]
    with app.app_context():
        stored = db.session.get(MailMessage, message_id)
        assert stored.status == "logged"
    empty_tables(app)


def test_work_waits_for_the_outer_commit_not_a_savepoint(ctx):
    db.session.execute(sa.select(1))
    with db.session.begin_nested():
        jobs.enqueue("test.record", value="f")
    assert CALLS == []  # released savepoint: nothing is handed over yet
    db.session.commit()
    assert CALLS == ["f"]
