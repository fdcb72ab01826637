"""Production mode on the real Redis (TEST_REDIS_URL): the handover to RQ (queues, leases,
no double enqueue) and the worker that runs jobs in the app it loaded once."""

import os
import subprocess
import sys
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine
from flask import current_app

from portal import jobs
from portal.db import utcnow
from portal.extensions import db
from portal.outbox import OutboxItem
from portal.worker import AppWorker, ForkingAppWorker
from tests.plugin import PROD_SECRETS

pytestmark = pytest.mark.redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEN = []


@jobs.job("test.seen")
def _seen(value):
    # What a job sees: the loaded app, and a session of its own (no mark from the last job).
    SEEN.append((value, current_app.name, db.session.info.get("test.mark")))
    db.session.info["test.mark"] = value


@jobs.job("notify.test_failing")
def _failing():
    raise RuntimeError("smtp away")


@jobs.job("test.chain")
def _chain(value, then=(), elsewhere=None, then_job="test.seen"):
    # A job whose commit makes more work due: ``then`` on its own queue (default), and
    # ``elsewhere`` on another (notify), as a confirmation queues its mails.
    SEEN.append((value, current_app.name, None))
    for follow in then:
        jobs.enqueue(then_job, value=follow)
    if elsewhere is not None:
        jobs.enqueue("notify.test_seen", value=elsewhere)


@jobs.job("test.look_at_the_queue")
def _look_at_the_queue(value):
    # What waits in Redis (the default queue) while this item runs.
    SEEN.append((value, queue("default").count, None))


@jobs.job("notify.test_seen")
def _seen_on_notify(value):
    SEEN.append((value, current_app.name, None))


@jobs.job("notify.test_sweeps_meanwhile")
def _sweeps_meanwhile():
    # A batch's next item, still running when the first one's retry falls due (30 s after
    # its failure; a batch runs up to JOB_TIMEOUT, and takes over for TAKE_OVER_SECONDS):
    # the scheduler's sweep ticks meanwhile.
    due = utcnow() + timedelta(seconds=jobs.retry_delay(1) + 1)
    with time_machine.travel(due, tick=False):
        SEEN.append((jobs.sweep_outbox(), queue("notify").job_ids, None))


@pytest.fixture(autouse=True)
def _nothing_seen_yet():
    SEEN.clear()


def queue(name):
    return current_app.extensions["rq"].get_queue(name)


def make_worker(kind="simple", queues=None):
    current_app.config["JOBS_WORKER"] = kind
    try:
        return current_app.extensions["rq"].make_worker(queues)
    finally:
        current_app.config.pop("JOBS_WORKER")


def work(kind="simple", queues=None):
    worker = make_worker(kind, queues)
    assert worker.work(burst=True)
    db.session.expire_all()
    return worker


@contextmanager
def redis_round_trips():
    """The Redis round trips this process makes in the block: a list, one entry each."""
    from redis.connection import AbstractConnection

    sent = []
    original = AbstractConnection.send_packed_command

    def counted(self, command, check_health=True):
        sent.append(1)
        return original(self, command, check_health)

    AbstractConnection.send_packed_command = counted
    try:
        yield sent
    finally:
        AbstractConnection.send_packed_command = original


def record(name="test.seen", **payload):
    item_id = jobs.enqueue(name, **payload)
    db.session.commit()
    return item_id


def test_an_item_is_handed_to_its_queue_after_the_commit(rq_ctx):
    item_id = jobs.enqueue("test.seen", value=1)
    db.session.flush()
    assert queue("default").count == 0  # not before the commit
    db.session.commit()
    assert queue("default").job_ids == [f"outbox-{item_id}"]
    mail = record("notify.test_failing")
    assert queue("notify").job_ids == [f"outbox-{mail}"]
    stored = db.session.get(OutboxItem, item_id)
    assert stored.dispatched_at is not None  # leased to Redis


def test_two_sweeps_never_queue_an_item_twice(rq_ctx):
    """A backlog must not feed itself: items still waiting in their queue are refused,
    even once their lease ran out, however many sweeps run."""
    ids = [record(value=n) for n in range(3)]
    assert jobs.sweep_outbox() == 0  # leased: nothing to hand over
    later = utcnow() + timedelta(seconds=jobs.DISPATCH_LEASE_SECONDS + 1)
    with time_machine.travel(later, tick=False):
        assert jobs.sweep_outbox() == 3  # the lease ran out: claimed again ...
    with time_machine.travel(
        later + timedelta(seconds=jobs.DISPATCH_LEASE_SECONDS + 1), tick=False
    ):
        assert jobs.sweep_outbox() == 3
    # ... but each job is in its queue once.
    assert sorted(queue("default").job_ids) == sorted(f"outbox-{i}" for i in ids)
    work()
    assert sorted(v for v, _app, _s in SEEN) == [0, 1, 2]


def test_a_job_redis_lost_is_handed_over_after_its_lease(rq_ctx, redis_url):
    from redis import Redis

    item_id = record(value="lost")
    Redis.from_url(redis_url).flushdb()  # Redis emptied between the commit and the worker
    assert jobs.sweep_outbox() == 0  # within the lease it may still be on its way
    with time_machine.travel(
        utcnow() + timedelta(seconds=jobs.DISPATCH_LEASE_SECONDS + 1), tick=False
    ):
        assert jobs.sweep_outbox() == 1
    assert queue("default").job_ids == [f"outbox-{item_id}"]
    work()
    assert [v for v, _app, _s in SEEN] == ["lost"]
    assert db.session.get(OutboxItem, item_id).done_at is not None


def test_a_failing_job_is_retried_on_the_outbox_schedule_only(rq_ctx):
    item_id = record("notify.test_failing")
    work()
    item = db.session.get(OutboxItem, item_id)
    assert item.attempts == 1 and "smtp away" in item.last_error and item.done_at is None
    assert item.dispatched_at is None
    assert abs((item.run_after - utcnow()).total_seconds() - jobs.retry_delay(1)) < 5
    # RQ neither retries it nor keeps it: nothing queued, scheduled or failed.
    notify = queue("notify")
    assert notify.count == 0 and notify.scheduled_job_registry.count == 0
    assert notify.failed_job_registry.count == 0
    assert jobs.sweep_outbox() == 0  # backing off
    with time_machine.travel(utcnow() + timedelta(seconds=jobs.retry_delay(1) + 1)):
        assert jobs.sweep_outbox() == 1
        work()
    assert db.session.get(OutboxItem, item_id).attempts == 2


def test_the_last_attempt_lands_in_rqs_failed_registry_and_the_admin_page(rq_ctx):
    from portal.notify import ops

    item_id = record("notify.test_failing")
    db.session.get(OutboxItem, item_id).attempts = jobs.MAX_ATTEMPTS - 1
    db.session.commit()
    work()
    assert db.session.get(OutboxItem, item_id).attempts == jobs.MAX_ATTEMPTS
    assert queue("notify").failed_job_registry.get_job_ids() == [f"outbox-{item_id}"]
    assert ops.outbox_counts()["gave_up"] == 1
    failed, error = ops.rq_failed_jobs()
    assert error is None and [j["id"] for j in failed] == [f"outbox-{item_id}"]
    assert "GaveUp" in failed[0]["error"] and "smtp away" in failed[0]["error"]
    # An admin's retry replaces the failed job with a fresh one on the queue.
    jobs.hand_over([item_id])
    assert queue("notify").failed_job_registry.count == 0
    assert queue("notify").job_ids == [f"outbox-{item_id}"]


def test_the_worker_runs_each_job_in_the_loaded_app_with_its_own_session(rq_ctx):
    first, second = record(value="a"), record(value="b")
    worker = work()
    assert isinstance(worker, AppWorker) and worker.app is current_app._get_current_object()
    assert [("a", current_app.name, None), ("b", current_app.name, None)] == SEEN
    done = db.session.scalars(
        sa.select(OutboxItem.done_at).where(OutboxItem.id.in_([first, second]))
    ).all()
    assert all(done)


def test_the_worker_listens_to_every_queue_by_default(rq_ctx):
    worker = current_app.extensions["rq"].make_worker()
    assert [q.name for q in worker.queues] == list(jobs.QUEUES)
    with pytest.raises(ValueError, match="unknown queue"):
        current_app.extensions["rq"].make_worker(["bulk"])


def test_the_forking_worker_runs_jobs_in_children_of_the_loaded_app(rq_ctx):
    item_id = record(value="forked")
    assert isinstance(work("fork"), ForkingAppWorker)
    assert SEEN == []  # it ran in a child process ...
    assert db.session.get(OutboxItem, item_id).done_at is not None  # ... and committed


def test_flask_rq_worker_command_runs_the_queues(rq_ctx, rq_app, redis_url):
    """The README's command, as a real process: `flask --app wsgi rq worker --burst`."""
    from portal.notify.mail import queue_mail
    from portal.notify.models import MailMessage

    message_id = queue_mail("rq@example.com", "Via RQ", "Sent by a worker")
    db.session.commit()
    assert queue("notify").count == 1
    env = {
        **os.environ,
        "DATABASE_URL": rq_app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_url,
        **PROD_SECRETS,
    }
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "rq", "worker", "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    db.session.expire_all()
    assert db.session.get(MailMessage, message_id).status == "logged"
    assert queue("notify").count == 0


def test_items_committed_together_share_rq_jobs(rq_ctx):
    """RQ's own cost (about 16 Redis round trips a job) is shared by up to
    ``JOBS_PER_RQ_JOB`` items; each item still runs in a session of its own."""
    per_job = current_app.config["JOBS_PER_RQ_JOB"]
    ids = [jobs.enqueue("test.seen", value=n) for n in range(2 * per_job + 5)]
    db.session.commit()
    expected = [
        f"outbox-{ids[k]}-to-{ids[min(k + per_job, len(ids)) - 1]}"
        for k in range(0, len(ids), per_job)
    ]
    assert sorted(queue("default").job_ids) == sorted(expected)
    later = utcnow() + timedelta(seconds=jobs.DISPATCH_LEASE_SECONDS + 1)
    with time_machine.travel(later, tick=False):
        jobs.sweep_outbox()  # leases ran out, but the queue still holds every item
    assert queue("default").count == len(expected)
    work()
    assert sorted(v for v, _app, _mark in SEEN) == list(range(len(ids)))
    assert {mark for _v, _app, mark in SEEN} == {None}  # a fresh session for each item
    done = db.session.scalar(
        sa.select(sa.func.count()).select_from(OutboxItem).where(OutboxItem.done_at.is_not(None))
    )
    assert done == len(ids)


def test_a_job_takes_over_the_fresh_jobs_waiting_behind_it(rq_ctx):
    """Under load each commit hands its item over as an RQ job of its own; the first job
    the worker runs takes the waiting ones over (up to ``JOBS_PER_RQ_JOB`` items), so RQ's
    cost per job is paid once for them. Each item still runs once, in its own session."""
    per_job = current_app.config["JOBS_PER_RQ_JOB"]
    ids = [record(value=n) for n in range(per_job + 3)]  # a commit each: a job each
    assert queue("default").count == per_job + 3
    worker = make_worker()
    worker.work(burst=True, max_jobs=1)  # one RQ job
    db.session.expire_all()
    done = db.session.scalars(
        sa.select(OutboxItem.id).where(OutboxItem.done_at.is_not(None)).order_by(OutboxItem.id)
    ).all()
    assert done == ids[:per_job]  # its own item and the next ones, in queue order
    assert {mark for _v, _app, mark in SEEN} == {None}
    assert queue("default").job_ids == [f"outbox-{i}" for i in ids[per_job:]]
    work()
    assert sorted(v for v, _app, _mark in SEEN) == list(range(per_job + 3))


@pytest.fixture
def handed_to_redis(monkeypatch):
    """The outbox ids handed to Redis from here on."""
    handed = []
    original = jobs.enqueue_outbox_items

    def recorded(queues, run, items, **kw):
        handed.extend(item_id for item_id, _queue in items)
        return original(queues, run, items, **kw)

    monkeypatch.setattr(jobs, "enqueue_outbox_items", recorded)
    return handed


def _ids(name):
    return db.session.scalars(
        sa.select(OutboxItem.id).where(OutboxItem.job == name).order_by(OutboxItem.id)
    ).all()


def test_what_a_jobs_commit_makes_due_on_its_queue_runs_in_that_job(rq_ctx, handed_to_redis):
    """A confirmation's mails run in the confirmation's own RQ job: no RQ job of their own,
    and no round trips to put one in Redis and take it back out. Work due on another queue
    still goes to that queue."""
    first = record("test.chain", value="first", then=["second"], elsewhere="mail")
    assert handed_to_redis == [first]
    worker = make_worker()
    worker.work(burst=True, max_jobs=1)  # the one RQ job
    db.session.expire_all()
    [second], [mail] = _ids("test.seen"), _ids("notify.test_seen")
    assert [v for v, _app, _mark in SEEN] == ["first", "second"]
    assert handed_to_redis == [first, mail]  # the second item never went to Redis
    assert queue("default").count == 0
    assert queue("notify").job_ids == [f"outbox-{mail}"]
    assert db.session.get(OutboxItem, second).done_at is not None
    work()
    assert [v for v, _app, _mark in SEEN] == ["first", "second", "mail"]


def test_work_a_job_makes_beyond_its_share_goes_to_redis(rq_ctx, handed_to_redis, monkeypatch):
    """A job runs at most ``JOBS_PER_RQ_JOB`` items: what its commits made due beyond that
    is handed to Redis at once (another worker may run it while this job goes on), as
    fresh work, and runs in a job of its own."""
    monkeypatch.setitem(current_app.config, "JOBS_PER_RQ_JOB", 2)
    record("test.chain", value="first", then=["a", "b", "c"], then_job="test.look_at_the_queue")
    worker = make_worker()
    worker.work(burst=True, max_jobs=1)
    # "a" ran in the job, and "b" and "c" were already waiting in Redis (one RQ job).
    assert [(v, seen) for v, seen, _mark in SEEN] == [("first", current_app.name), ("a", 1)]
    db.session.expire_all()
    later = _ids("test.look_at_the_queue")[1:]
    assert handed_to_redis[1:] == later
    assert queue("default").job_ids == [f"outbox-{later[0]}-to-{later[1]}"]
    work()
    assert [v for v, _seen, _mark in SEEN] == ["first", "a", "b", "c"]
    done = db.session.scalar(
        sa.select(sa.func.count()).select_from(OutboxItem).where(OutboxItem.done_at.is_(None))
    )
    assert done == 0


def test_work_kept_and_not_run_in_time_goes_to_redis_when_the_job_ends(
    rq_ctx, handed_to_redis, monkeypatch
):
    """A job stops taking more after ``TAKE_OVER_SECONDS``: what it kept and did not run
    is handed to Redis as it ends, not left to wait for its lease."""
    monkeypatch.setattr(jobs, "TAKE_OVER_SECONDS", 0)
    first = record("test.chain", value="first", then=["second"])
    make_worker().work(burst=True, max_jobs=1)
    db.session.expire_all()
    [second] = _ids("test.seen")
    assert [v for v, _app, _mark in SEEN] == ["first"]
    assert handed_to_redis == [first, second]
    assert queue("default").job_ids == [f"outbox-{second}"]
    work()
    assert [v for v, _app, _mark in SEEN] == ["first", "second"]


def test_jobs_a_sweep_hands_over_are_not_taken_over(rq_ctx):
    """A retry (or an admin's) may be an item's last attempt: it keeps an RQ job of its own,
    so RQ's failed registry names the item that gave up."""
    fresh = record(value="fresh")
    swept = record(value="swept")
    queue("default").fetch_job(f"outbox-{swept}").delete()  # as if Redis lost it ...
    db.session.get(OutboxItem, swept).dispatched_at = None  # ... or it failed once
    db.session.commit()
    assert jobs.sweep_outbox() == 1
    assert queue("default").job_ids == [f"outbox-{fresh}", f"outbox-{swept}"]
    worker = make_worker()
    worker.work(burst=True, max_jobs=1)
    assert [v for v, _app, _mark in SEEN] == ["fresh"]
    assert queue("default").job_ids == [f"outbox-{swept}"]


def _round_trips_to_run(jobs_count):
    """Redis round trips the worker makes to run ``jobs_count`` jobs of one item each,
    committed one by one as requests commit them (a burst run: start and stop included)."""
    for n in range(jobs_count):
        record(value=n)
    with redis_round_trips() as sent:
        work()
    return len(sent)


def test_a_job_costs_the_worker_few_redis_round_trips(rq_ctx, monkeypatch):
    """RQ's own bookkeeping is most of a small job's cost: a round trip costs the worker
    about 0.05 ms of CPU. Here (a burst run, no take-over) RQ's worker made 18 a job, six of
    them heartbeats and idle states sent again (``portal.worker._FewerRoundTrips``); 12 are
    left: the dequeue and the job's read, two for its start, PERSIST, its heartbeat, its
    dependents (two), its end, the idle state, the worker's heartbeat, the suspension
    check."""
    monkeypatch.setitem(current_app.config, "JOBS_PER_RQ_JOB", 1)  # no take-over here
    _round_trips_to_run(1)  # connections opened (their handshakes not counted)
    three = _round_trips_to_run(3)
    six = _round_trips_to_run(6)
    assert (six - three) / 3 <= 12, (three, six)
    assert len(SEEN) == 10


def test_the_worker_still_tells_redis_it_is_alive(rq_ctx, monkeypatch):
    """What ``_FewerRoundTrips`` leaves out is only a repeat: a heartbeat with the same
    time-to-live within 10 s, or the state last sent. A heartbeat with another TTL, one
    10 s later, and one after a failed one all go out; so does a new state."""
    import portal.worker

    worker = make_worker()
    worker.register_birth()
    clock = [1000.0]
    monkeypatch.setattr(portal.worker.time, "monotonic", lambda: clock[0])

    def trips(call):
        with redis_round_trips() as sent:
            call()
        return len(sent)

    ttl = worker.worker_ttl + 60
    assert trips(worker.heartbeat) == 1  # one round trip, not two
    assert worker.connection.ttl(worker.key) > ttl - 5
    assert trips(worker.heartbeat) == 0  # a repeat
    assert trips(lambda: worker.heartbeat(30)) == 1  # another TTL
    assert 0 < worker.connection.ttl(worker.key) <= 30
    assert trips(lambda: worker.heartbeat(30)) == 0
    assert trips(worker.heartbeat) == 1  # back to the worker's own TTL
    clock[0] += 11
    assert trips(worker.heartbeat) == 1  # 10 s on: sent again

    clock[0] += 11
    with monkeypatch.context() as away:  # Redis away for this heartbeat
        away.setattr(
            "redis.client.Pipeline.execute",
            lambda self, raise_on_error=True: (_ for _ in ()).throw(ConnectionError("away")),
        )
        with pytest.raises(ConnectionError):
            worker.heartbeat()
    assert trips(worker.heartbeat) == 1  # the failed one was not counted as sent

    worker.set_state("idle")
    assert trips(lambda: worker.set_state("idle")) == 0
    assert trips(lambda: worker.set_state("busy")) == 1
    assert worker.connection.hget(worker.key, "state") == b"busy"
    worker.register_death()


# --- Redis in trouble: the web's hand-over, the one scheduler, the marker ------------------


def test_a_hung_redis_holds_a_committing_request_no_longer_than_the_other_clients(tmp_path):
    """A Redis that accepts the connection and never answers (blackholed, swapping, stuck in
    a fork) held every request that commits follow-up work for redis-py's 5 s after its
    commit: ``RQ_CONNECTION`` was a bare URL, where the limiter's and the calendar's clients
    give up after 1 s. The hand-over's connection is bounded like theirs now; the item's
    lease is released and the sweep hands it over once Redis answers."""
    import socket
    import threading
    import time

    from portal import create_app
    from tests.plugin import _test_config, create_schema

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)  # the kernel completes the handshake; nobody ever answers
    url = f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    app = create_app(
        _test_config(
            "sqlite:///" + str(tmp_path / "hung.sqlite3"),
            JOBS_INLINE=False,
            RQ_CONNECTION=url,
            REDIS_URL=url,
            RQ_ASYNC=True,
        )
    )
    create_schema(app)
    finished, errors, took = threading.Event(), [], []

    def request_that_commits():
        try:
            with app.app_context():
                started = time.monotonic()
                item_id = jobs.enqueue("test.seen", value="hung")
                db.session.commit()  # the hand-over to Redis runs after this commit
                took.append(time.monotonic() - started)
                assert db.session.get(OutboxItem, item_id).dispatched_at is None  # released
                db.session.remove()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            finished.set()

    thread = threading.Thread(target=request_that_commits, daemon=True)
    thread.start()
    try:
        returned = finished.wait(20)
    finally:
        server.close()  # the pending connection is reset: the thread ends now
        thread.join(30)
        with app.app_context():
            db.engine.dispose()
    assert returned, "the commit's hand-over to a hung Redis was still blocked after 20 s"
    assert errors == []
    assert took[0] < 2, f"the commit returned after {took[0]:.1f} s (the others give up in 1 s)"


def test_the_worker_keeps_its_own_unbounded_connection_for_its_blocking_dequeue(rq_ctx):
    """The 1 s bound is the web's hand-over's: the worker blocks on its queues for minutes
    (RQ raises its connection's read timeout above that wait), on a connection of its own."""
    rq_ext = current_app.extensions["rq"]
    handover = rq_ext.get_queue("default").connection.connection_pool.connection_kwargs
    assert handover["socket_timeout"] == 1 and handover["socket_connect_timeout"] == 1
    worker = rq_ext.make_worker()
    own = worker.connection.connection_pool.connection_kwargs
    assert worker.connection is not rq_ext.get_queue("default").connection
    assert own["socket_timeout"] > worker.dequeue_timeout
    assert handover["socket_timeout"] == 1  # RQ's raise did not reach the hand-over's


def test_the_scheduler_survives_a_redis_outage(rq_ctx, monkeypatch):
    """``flask rq cron`` is exactly one process, and under ``make prod`` (honcho) the end of
    any process stops them all, the web included. RQ's CronScheduler let a Redis error end
    it: an outage overlapping a tick (the outbox sweep ticks every 30 s) stopped every
    periodic job until someone restarted it. It now logs, waits and carries on."""
    import logging
    import signal
    import threading

    import redis
    from rq import cron as rq_cron
    from rq.exceptions import StopRequested

    from tests.logrecords import logged

    real_enqueue = rq_cron.CronJob.enqueue
    outage = {"left": 2}

    def enqueue_during_outage(self, connection):
        if outage["left"]:
            outage["left"] -= 1
            error = redis.exceptions.ConnectionError if outage["left"] else redis.TimeoutError
            raise error("Error 111 connecting. Connection refused.")
        return real_enqueue(self, connection)

    sleeps, here, real_sleep = [], threading.current_thread(), rq_cron.time.sleep

    def sleep(seconds):
        if threading.current_thread() is not here:  # another test's thread still about
            return real_sleep(seconds)
        sleeps.append(seconds)
        if len(sleeps) >= 4:
            raise StopRequested()  # what SIGTERM does to the scheduler

    monkeypatch.setattr(rq_cron.CronJob, "enqueue", enqueue_during_outage)
    monkeypatch.setattr(rq_cron.time, "sleep", sleep)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    scheduler = current_app.extensions["rq"].make_cron_scheduler()
    try:
        with logged("portal.worker", logging.WARNING) as records:
            scheduler.start()  # `flask rq cron`
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        pytest.fail(f"the scheduler process ended on a Redis outage: {exc!r}")
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    assert sleeps[:2] == [1, 2], sleeps  # backing off while Redis is away
    assert sum("Redis could not be reached" in r.getMessage() for r in records) == 2
    # Once Redis answers again the ticks go on: the outbox sweep is queued.
    queued = queue("default").get_jobs()
    assert any(
        j.func_name.endswith("run_periodic") and j.args == ("jobs.sweep_outbox",) for j in queued
    )


def test_an_items_marker_goes_with_its_finished_job(rq_ctx, redis_url):
    """``portal:outbox-item:<id>`` says which live job holds an item; once the item is done
    it says nothing, and it was left in Redis for 30 days (``FAILED_JOB_TTL``)."""
    from redis import Redis

    from portal.worker import _marker

    item_id = record(value="marked")
    client = Redis.from_url(redis_url)
    assert client.get(_marker(item_id)) == f"outbox-{item_id}".encode()
    work()
    assert db.session.get(OutboxItem, item_id).done_at is not None
    assert client.exists(_marker(item_id)) == 0
    client.close()


def test_a_failed_items_retry_is_handed_over_while_its_batch_runs_on(rq_ctx):
    """An item failed inside a batch job (``outbox-<first>-to-<last>``) that went on with
    its next items; its retry fell due (30 s) while the batch still ran. Its marker still
    named the running batch, so the sweep's hand-over took the item as held and queued
    nothing, yet counted it handed over and leased it: the retry waited the whole lease
    (10 min) instead of its backoff. The failed item's marker now goes with its failure."""
    failing = jobs.enqueue("notify.test_failing")
    jobs.enqueue("notify.test_sweeps_meanwhile")
    db.session.commit()
    assert len(queue("notify").job_ids) == 1  # one RQ job runs both
    work(queues=["notify"])
    # The sweep during the batch handed the retry to Redis (and the burst worker ran it).
    assert [(1, [f"outbox-{failing}"], None)] == SEEN
    assert db.session.get(OutboxItem, failing).attempts == 2


def test_a_sweep_counts_only_what_redis_took(rq_ctx, monkeypatch):
    """Redis refused the sweep's hand-over: the items' lease is released for the next
    sweep, and the sweep said it had handed them over all the same."""
    import redis

    def refused(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Connection refused.")

    item_id = record(value="later")
    db.session.get(OutboxItem, item_id).dispatched_at = None  # as after a failure
    db.session.commit()
    queue("default").empty()
    with monkeypatch.context() as m:
        m.setattr(jobs, "enqueue_outbox_items", refused)
        assert jobs.sweep_outbox() == 0
    db.session.expire_all()
    assert db.session.get(OutboxItem, item_id).dispatched_at is None
    assert jobs.sweep_outbox() == 1  # Redis back
    assert queue("default").job_ids == [f"outbox-{item_id}"]
