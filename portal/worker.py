"""The RQ side of background work: putting outbox items on their queues, and a worker that
runs jobs in the app it loaded once.

``flask --app wsgi rq worker`` builds its worker through ``AppRQ.make_worker`` (the
extension in ``portal.extensions``). Flask-RQ's own worker starts a new ``flask`` process
per job (about 1.8 s of CPU each, app start-up included); ours keeps the loaded app and
runs every job in a fresh app context (its own session and ``g``, removed when it ends).

Two kinds, chosen by ``JOBS_WORKER`` (docs/notifications.md "Workers" has the figures):
``simple`` (default): jobs run in the worker process itself, RQ's ``SimpleWorker``; a job
that overruns is stopped by SIGALRM, as in a horse. ``fork``: RQ's forking ``Worker``,
each job in a child forked from the loaded app (no import), for jobs that might crash the
interpreter or leak memory; measured about 30 times the CPU per job of ``simple`` (the
fork copies the heap as it is touched, and each child opens its own database connection).

Three Redis connections, each bounded for what waits on it: the hand-over's (the queues of
``rq.queues``, used by requests after their commit: ``RQ_HANDOVER_OPTIONS``, 1 s), the
worker's own (it blocks on its queues for minutes; RQ sets its read timeout above that), and
the scheduler's (``flask rq cron``, which outlives a Redis outage: ``PatientCronScheduler``)."""

import logging
import time
from datetime import UTC, timedelta

import redis
from flask import current_app
from flask_rq import RQ
from rq import Queue, SimpleWorker, Worker
from rq.cron import CronScheduler
from rq.exceptions import StopRequested
from rq.job import Job, JobStatus

from portal import replica
from portal.db import db, utcnow

WORKER_KINDS = ("simple", "fork")
# A job in one of these states is still to run (or running): the queue refuses its id.
_WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
_BATCH = 1000  # job ids per Redis pipeline
# A finished job expires from Redis on its own (the outbox row is the record). Not 0: RQ
# deletes a job with no result at once, which costs more Redis round trips than expiring it.
RESULT_TTL = 300
FRESH = "portal_fresh"  # job meta: its items were handed over by their commit
# A heartbeat with the time-to-live of one sent this recently is not sent again (RQ's worker
# key lives worker_ttl + 60 s, minutes).
HEARTBEAT_REPEAT_SECONDS = 10
# The scheduler's Redis: a command that has no answer within this is an outage (it waits on
# nothing else; a request's hand-over gives up sooner, ``RQ_HANDOVER_OPTIONS``).
CRON_REDIS_TIMEOUT = 5
# While Redis is away the scheduler tries again after 1 s, 2 s, 4 s … at most every 30 s
# (the outbox sweep's period).
CRON_RETRY_FIRST, CRON_RETRY_MAX = 1, 30
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

log = logging.getLogger("portal.worker")


def outbox_job_id(ids):
    """``outbox-<id>`` for one item, ``outbox-<first>-to-<last>`` for a batch."""
    return f"outbox-{ids[0]}" if len(ids) == 1 else f"outbox-{ids[0]}-to-{ids[-1]}"


def _marker(item_id):
    # Which RQ job holds an outbox item: the queue refuses an item a live job still holds.
    return f"portal:outbox-item:{item_id}"


def enqueue_outbox_items(queues, run, items, *, timeout, failure_ttl, per_job=1, committed=False):
    """Put ``[(item id, queue name)]`` on their queues, ``per_job`` items to an RQ job
    (``run(ids)`` runs them one after another, each its own unit of work), unless a job the
    queue still holds (waiting, or running within its timeout) has the item already. Returns
    the ids enqueued.

    Why batches: a job costs about 16 Redis round trips (3 to hand it over, 13 for the
    worker: dequeue, registries, heartbeat, result), more than a small job's own work; a
    batch shares them.
    ``queues`` maps names to RQ queues. No RQ ``Retry``: a failure is retried on the
    outbox's schedule. ``committed``: items just committed (their first attempt), which a job
    running before them may take over (``take_waiting_items``)."""
    by_queue = {}
    for item_id, queue_name in items:
        by_queue.setdefault(queue_name, []).append(item_id)
    enqueued = []
    for queue_name, ids in by_queue.items():
        queue = queues[queue_name]
        for start in range(0, len(ids), _BATCH):
            enqueued.extend(
                _enqueue_some(
                    queue,
                    run,
                    ids[start : start + _BATCH],
                    timeout,
                    failure_ttl,
                    per_job,
                    committed,
                )
            )
    return enqueued


def _enqueue_some(queue, run, ids, timeout, failure_ttl, per_job, committed):
    connection, serializer = queue.connection, queue.serializer
    holders = [m.decode() if m else None for m in connection.mget([_marker(i) for i in ids])]
    known = [
        j
        for j in Job.fetch_many(
            sorted({h for h in holders if h}), connection=connection, serializer=serializer
        )
        if j is not None
    ]
    held = {j.id for j in known if _still_held(j)}
    fresh = [i for i, holder in zip(ids, holders) if holder not in held]
    chunks = [fresh[k : k + per_job] for k in range(0, len(fresh), per_job)]
    # A finished, failed or stale job with a batch's id is replaced.
    old = {j.id: j for j in known}
    for job in Job.fetch_many(
        [outbox_job_id(c) for c in chunks], connection=connection, serializer=serializer
    ):
        if job is not None:
            old[job.id] = job
    with connection.pipeline() as pipe:
        datas = []
        for chunk in chunks:
            job_id = outbox_job_id(chunk)
            if job_id in old:
                old[job_id].delete(pipeline=pipe)
            datas.append(
                queue.prepare_data(
                    run,
                    args=(chunk,),
                    timeout=timeout,
                    result_ttl=RESULT_TTL,
                    failure_ttl=failure_ttl,
                    job_id=job_id,
                    meta={FRESH: True} if committed else None,
                )
            )
            for item_id in chunk:
                pipe.set(_marker(item_id), job_id, ex=failure_ttl)
        if datas:
            queue.enqueue_many(datas, pipeline=pipe)
        pipe.execute()
    return fresh


# Delete each marker still naming the job (ARGV[1]); one a later job holds is left alone.
_FORGET_MARKERS = """
for _, key in ipairs(KEYS) do
  if redis.call('get', key) == ARGV[1] then redis.call('del', key) end
end
"""


def forget_markers(job, pipeline):
    """An outbox job has ended (done, failed or stopped): its items' markers say nothing
    more (an ended job holds nothing) and are deleted with the worker's own bookkeeping of
    that end (``pipeline``: no round trip of their own), rather than left in Redis for
    ``failure_ttl`` (30 days, a key per item). Those of the items it took over went then."""
    if job.id.startswith("outbox-") and job.args and job.args[0]:
        ids = job.args[0]
        pipeline.eval(_FORGET_MARKERS, len(ids), *[_marker(i) for i in ids], job.id)


def let_go(job, item_id):
    """The running ``job`` holds this item no more: its attempt failed, and the retry is
    handed over as a job of its own when due. Its marker is deleted if it still names
    ``job``: left, it said the item was held as long as the job ran on (a batch's next
    items, its take-over: minutes), so a retry due meanwhile (30 s) was refused, and its
    lease taken, until the lease ran out (10 min). Not for an item done: it is never
    handed over again, and its marker goes with its job."""
    try:
        job.connection.eval(_FORGET_MARKERS, 1, _marker(item_id), job.id)
    except REDIS_DOWN as exc:  # the retry then waits out its lease, as before
        log.warning("could not let go of outbox item %s: %s", item_id, exc)


def take_waiting_items(job, limit):
    """Take the outbox jobs waiting at the head of the running ``job``'s queue, up to
    ``limit`` items, for ``job`` to run too; returns their item ids.

    Why: each commit hands its items over as an RQ job of its own, and the worker spends
    about 13 Redis round trips (and more CPU than a small job) on every job; taken over
    here, four round trips serve them all. Only fresh jobs are taken (items a commit just
    handed over, on their first attempt): none of them can give up here, so RQ's failed
    registry still names the job of an item that did. A job belongs to whoever removes it
    from the queue's list (LREM, like the worker's own dequeue, is atomic); its items still
    run each in a unit of work of its own, and an item taken and then lost with this worker
    is handed over again when its lease runs out, as a job Redis lost is."""
    connection = job.connection
    key = Queue.redis_queue_namespace_prefix + job.origin
    head = [j.decode() for j in connection.lrange(key, 0, max(limit, 1) - 1)]
    waiting = job.__class__.fetch_many(
        [j for j in head if j.startswith("outbox-")],
        connection=connection,
        serializer=job.serializer,
    )
    chosen, count = [], 0
    for other in waiting:
        if other is None or not other.meta.get(FRESH) or other.func_name != job.func_name:
            continue
        size = len(other.args[0])
        if count + size > limit:
            break
        chosen.append(other)
        count += size
    if not chosen:
        return []
    with connection.pipeline(transaction=False) as pipe:
        for other in chosen:
            pipe.lrem(key, 1, other.id)
        removed = pipe.execute()
    taken = [other for other, n in zip(chosen, removed) if n]
    with connection.pipeline() as pipe:
        for other in taken:
            # A queued job is in no registry: its hash and markers are all there is.
            pipe.delete(other.key, *[_marker(i) for i in other.args[0]])
        pipe.execute()
    return [item_id for other in taken for item_id in other.args[0]]


def _still_held(job):
    status = job.get_status(refresh=False)
    if status in _WAITING:
        return True
    if status == JobStatus.STARTED and job.started_at is not None:
        # Running, unless it outlived its timeout: then its worker died with it.
        started = job.started_at.replace(tzinfo=job.started_at.tzinfo or UTC)
        limit = timedelta(seconds=(job.timeout or 180) + 60)
        return utcnow() - started < limit
    return False


class _AppContextJobs:
    """Each job in an app context of its own: a fresh session, removed at its end; an
    outbox job's markers deleted at its end."""

    app = None

    def perform_job(self, job, queue):
        with self.app.app_context():
            return super().perform_job(job, queue)

    def cleanup_execution(self, job, pipeline):
        # RQ calls this in the pipeline that records every end of a job.
        super().cleanup_execution(job, pipeline)
        forget_markers(job, pipeline)


class _FewerRoundTrips:
    """RQ's worker tells Redis it is alive and idle more often than it needs to: around each
    job it sent its heartbeat four times (two round trips each) and its idle state twice,
    six of the 19 round trips a job cost it under load (13 now; 18 and 12 in a burst run,
    which does not block on the queue or look at it for jobs to take over). Here a
    heartbeat is one round trip, and is not sent again with the same time-to-live within
    ``HEARTBEAT_REPEAT_SECONDS`` (the key then lives minutes longer: nothing is lost); a
    state is not sent again when it is the one this worker last sent."""

    _beat = (None, float("-inf"))  # (ttl, time.monotonic()) of the last heartbeat sent

    def heartbeat(self, timeout=None, pipeline=None):
        ttl, at = timeout or self.worker_ttl + 60, time.monotonic()
        if pipeline is not None:  # part of a round trip RQ makes anyway
            self._beat = (ttl, at)
            return super().heartbeat(timeout, pipeline)
        last_ttl, last_at = self._beat
        if ttl == last_ttl and at - last_at < HEARTBEAT_REPEAT_SECONDS:
            return None
        with self.connection.pipeline(transaction=False) as pipe:
            super().heartbeat(timeout, pipe)
            pipe.execute()
        self._beat = (ttl, at)  # only once it went out: a failed one is sent again
        return None

    def set_state(self, state, pipeline=None):
        if pipeline is None and state == getattr(self, "_state", None):
            return
        super().set_state(state, pipeline)


class AppWorker(_AppContextJobs, _FewerRoundTrips, SimpleWorker):
    """Jobs run in this process, in the app loaded once."""


class ForkingAppWorker(_AppContextJobs, Worker):
    """Each job in a child forked from the loaded app."""

    def main_work_horse(self, job, queue):
        # Pooled connections belong to the parent: the child opens its own.
        with self.app.app_context():
            for engine in (*db.engines.values(), replica.engine()):
                if engine is not None:
                    engine.dispose(close=False)
        super().main_work_horse(job, queue)


class PatientCronScheduler(CronScheduler):
    """RQ's cron scheduler, which a Redis outage no longer ends. RQ's ``start`` lets a Redis
    error out of its loop: an outage overlapping a tick (the outbox sweep ticks every 30 s)
    ended ``flask rq cron``, the one scheduler, and under ``make prod`` (honcho) the end of
    one process stops them all, the web included. Here the loop logs the outage, waits
    (1 s, doubling, at most 30 s) and carries on; a job whose tick failed is still due and
    is enqueued once Redis answers (ticks missed meanwhile are not made up: each job's
    next run counts from its last enqueue). Only a stop request (SIGTERM, Ctrl-C) ends it."""

    def start(self):
        self.log.info("CronScheduler %s: starting...", self.name)
        self._install_signal_handlers()
        born, retry_in = False, CRON_RETRY_FIRST
        try:
            while True:
                try:
                    if not born:
                        self.register_birth()
                        born = True
                    if self.enqueue_jobs():
                        self.save()  # the jobs' timing, for RQ's monitoring
                    self.heartbeat()
                    pause, retry_in = self.calculate_sleep_interval(), CRON_RETRY_FIRST
                except REDIS_DOWN as exc:
                    log.warning(
                        "Redis could not be reached by the scheduler (%s: %s); again in %s s",
                        type(exc).__name__,
                        exc,
                        retry_in,
                    )
                    pause, retry_in = retry_in, min(retry_in * 2, CRON_RETRY_MAX)
                if pause > 0:
                    time.sleep(pause)
        except KeyboardInterrupt:
            self.log.info("CronScheduler %s: received KeyboardInterrupt", self.name)
        except StopRequested:
            self.log.info("CronScheduler %s: stop requested", self.name)
        finally:
            try:
                self.register_death()
            except REDIS_DOWN as exc:  # its registry entry expires on its own
                log.warning("the scheduler could not unregister from Redis: %s", exc)
            self.log.info("CronScheduler %s: shutdown complete", self.name)


def _redis(app, **options):
    """A client of its own on ``RQ_CONNECTION`` (a URL, or redis-py's keyword arguments)."""
    conf = app.config.get("RQ_CONNECTION") or {}
    if isinstance(conf, str):
        return redis.Redis.from_url(conf, **options)
    return redis.Redis(**{**conf, **options})


def _queues_on(queues, connection):
    return {
        name: Queue(name, connection, is_async=q.is_async, job_class=q.job_class)
        for name, q in queues.items()
    }


class AppRQ(RQ):
    """Flask-RQ with a worker that keeps the loaded app (``flask rq worker``), a hand-over
    bounded like the portal's other Redis clients, and a scheduler that outlives an outage
    (``flask rq cron``)."""

    def init_app(self, app):
        super().init_app(app)
        # Flask-RQ builds its queues on a client from the bare URL: redis-py's 5 s to give
        # up on a Redis that hangs, which every request that committed follow-up work would
        # wait after its commit. Its queues are rebuilt here on the bounded hand-over client
        # (pinned Flask-RQ 1.0 keeps them per app in ``_queues``).
        options = app.config.get("RQ_HANDOVER_OPTIONS")
        if options:
            self._queues[app] = _queues_on(self._queues[app], _redis(app, **options))

    def make_cron_scheduler(self):
        """``flask rq cron``: the jobs ``cron_register`` registered, on a client of its own
        whose commands time out (a hung Redis is an outage like a refused one)."""
        app = self._get_current_app()
        connection = _redis(
            app, socket_timeout=CRON_REDIS_TIMEOUT, socket_connect_timeout=CRON_REDIS_TIMEOUT
        )
        scheduler = PatientCronScheduler(connection, name=app.name)
        for item in self._cron_job_data:
            scheduler.register(**item)
        return scheduler

    def make_worker(self, queues=None, **kwargs):
        app = current_app._get_current_object()
        known = self.queues
        names = list(queues) if queues else list(known)  # default: every configured queue
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown queue(s) {unknown}; configured: {list(known)}")
        kind = app.config.get("JOBS_WORKER", "simple")  # portal.config validates it
        if kind not in WORKER_KINDS:
            raise ValueError(f"JOBS_WORKER must be one of {WORKER_KINDS}, not {kind!r}")
        worker_class = AppWorker if kind == "simple" else ForkingAppWorker
        # The worker's own client: its blocking dequeue waits minutes (RQ raises this
        # client's read timeout above that), which the hand-over's 1 s would cut short.
        own = _queues_on({n: known[n] for n in names}, _redis(app))
        worker_queues = [own[n] for n in names]
        worker = worker_class(
            worker_queues,
            connection=worker_queues[0].connection,
            job_class=worker_queues[0].job_class,
            **kwargs,
        )
        worker.app = app
        return worker
