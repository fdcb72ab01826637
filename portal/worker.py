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

from datetime import UTC, timedelta

from flask import current_app
from flask_rq import RQ
from rq import SimpleWorker, Worker
from rq.job import Job, JobStatus

from portal.db import db, utcnow

WORKER_KINDS = ("simple", "fork")
# A job in one of these states is still to run (or running): the queue refuses its id.
_WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
_BATCH = 1000  # job ids per Redis pipeline
# A finished job expires from Redis on its own (the outbox row is the record). Not 0: RQ
# deletes a job with no result at once, which costs more Redis round trips than expiring it.
RESULT_TTL = 300


def outbox_job_id(ids):
    """``outbox-<id>`` for one item, ``outbox-<first>-to-<last>`` for a batch."""
    return f"outbox-{ids[0]}" if len(ids) == 1 else f"outbox-{ids[0]}-to-{ids[-1]}"


def _marker(item_id):
    # Which RQ job holds an outbox item: the queue refuses an item a live job still holds.
    return f"portal:outbox-item:{item_id}"


def enqueue_outbox_items(queues, run, items, *, timeout, failure_ttl, per_job=1):
    """Put ``[(item id, queue name)]`` on their queues, ``per_job`` items to an RQ job
    (``run(ids)`` runs them one after another, each its own unit of work), unless a job the
    queue still holds (waiting, or running within its timeout) has the item already. Returns
    the ids enqueued.

    Why batches: RQ spends about 30 Redis round trips on each job (dequeue, registries,
    heartbeats, result), several times the cost of a small job itself; a batch shares them.
    ``queues`` maps names to RQ queues. No RQ ``Retry``: a failure is retried on the
    outbox's schedule."""
    by_queue = {}
    for item_id, queue_name in items:
        by_queue.setdefault(queue_name, []).append(item_id)
    enqueued = []
    for queue_name, ids in by_queue.items():
        queue = queues[queue_name]
        for start in range(0, len(ids), _BATCH):
            enqueued.extend(
                _enqueue_some(
                    queue, run, ids[start : start + _BATCH], timeout, failure_ttl, per_job
                )
            )
    return enqueued


def _enqueue_some(queue, run, ids, timeout, failure_ttl, per_job):
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
                )
            )
            for item_id in chunk:
                pipe.set(_marker(item_id), job_id, ex=failure_ttl)
        if datas:
            queue.enqueue_many(datas, pipeline=pipe)
        pipe.execute()
    return fresh


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


class AppWorker(_AppContextJobs, SimpleWorker):
    """Jobs run in this process, in the app loaded once."""


class ForkingAppWorker(_AppContextJobs, Worker):
    """Each job in a child forked from the loaded app."""

    def main_work_horse(self, job, queue):
        # Pooled connections belong to the parent: the child opens its own.
        with self.app.app_context():
            for engine in db.engines.values():
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
