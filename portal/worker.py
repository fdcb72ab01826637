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
fork copies the heap as it is touched, and each child opens its own database connection)."""

import time
from datetime import UTC, timedelta

from flask import current_app
from flask_rq import RQ
from rq import Queue, SimpleWorker, Worker
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
    """Each job in an app context of its own: a fresh session, removed at its end."""

    app = None

    def perform_job(self, job, queue):
        with self.app.app_context():
            return super().perform_job(job, queue)


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


class AppRQ(RQ):
    """Flask-RQ with a worker that keeps the loaded app (``flask rq worker``)."""

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
        worker_queues = [known[n] for n in names]
        worker = worker_class(
            worker_queues,
            connection=worker_queues[0].connection,
            job_class=worker_queues[0].job_class,
            **kwargs,
        )
        worker.app = app
        return worker
