"""Background work: the job registry, the handover after the commit, the runner and the
periodic schedule.

Production: after the commit each outbox item becomes an RQ job ``outbox-<id>`` on the queue
its name routes to; ``flask rq worker`` (``portal.worker``: the app loaded once) runs it in an
app context of its own; ``flask rq cron`` ticks the periodic work. One retry schedule: a
failed item is retried by the outbox's backoff (``sweep_outbox`` hands it over again when it
is due), never by RQ. Embedded default: the same items run in-process after the commit (in
a background thread for ``make run``, synchronously in tests), and a thread ticks the
periodic work.

Over 400 lines: an outbox item's whole life (record, hand over, run, retry, sweep) reads
best in one place."""

import contextvars
import logging
import queue
import threading
import time
import traceback
import weakref
from contextlib import contextmanager
from datetime import timedelta
from functools import cache
from types import SimpleNamespace

import sqlalchemy as sa
from flask import current_app
from rq import get_current_job
from sqlalchemy import event
from sqlalchemy.orm import Session
from tenacity import wait_exponential

from portal.config import setting
from portal.db import DOING, SQLITE_LOCK, Busy, bind_columns, db, insert_for, unit_of_work, utcnow
from portal.extensions import rq
from portal.outbox import OutboxItem
from portal.worker import enqueue_outbox_items, let_go, take_waiting_items

log = logging.getLogger("portal.jobs")

JOBS = {}  # name -> function(**payload)
ON_FAILURE = {}  # name -> function(exc, **payload), see job()
PERIODIC = {}  # name -> (seconds, function())
QUEUE_OF = {}  # name -> queue, for jobs and periodic work

# The queues the README names; a worker listens to all four by default.
QUEUES = ("default", "payments", "payouts", "notify")
# A name is routed by its prefix: work that moves money shares a queue with its gateway, so
# a burst of notices never delays a refund or a payout. Anything else: ``default``.
PREFIX_QUEUES = {
    "notify": "notify",
    "payments": "payments",
    "gateway": "payments",
    "refunds": "payments",
    "payouts": "payouts",
}

MAX_ATTEMPTS = 8
# The one retry schedule: 30 s, 2 min, 8 min, 32 min, ~2 h, then every ~8.5 h.
BACKOFF = wait_exponential(multiplier=30, exp_base=4, max=30 * 4**5)
JOB_TIMEOUT = 300  # seconds RQ lets one outbox job run before stopping it
# An item handed to Redis is not handed over again until its lease runs out: longer than a
# job may run, so only work Redis lost (emptied, restarted without persistence) is resent.
DISPATCH_LEASE_SECONDS = 600
# A job stops taking over waiting ones after this long: well within its JOB_TIMEOUT.
TAKE_OVER_SECONDS = 30
FAILED_JOB_TTL = 30 * 24 * 3600  # how long RQ's failed registry keeps a job that gave up


# What a job's claim reads with its outbox row, for the layers above (``read_with_claim``).
_CLAIM_READS = []


def read_with_claim(column, keep):
    """Read ``column`` (a scalar subquery) in the statement that claims every job's outbox
    row, and hand its value to ``keep(value)`` before the job runs: the policy's stamp,
    which most jobs read, then costs them no statement of its own (as a request reads it
    with its user). Register at import time, before any job runs."""
    if all(known is not column for known, _ in _CLAIM_READS):
        _CLAIM_READS.append((column, keep))


class RetryLater(Exception):
    """A transient failure: the item stays pending and is tried again with backoff."""


# True while a job runs its item's last attempt (``MAX_ATTEMPTS``): see ``last_attempt``.
_LAST_ATTEMPT = contextvars.ContextVar("outbox_last_attempt", default=False)


def last_attempt():
    """Whether the running job is its item's last attempt: a ``RetryLater`` now gives up.
    A job whose wait must end in a decision (not a failed job) decides now instead. Its
    ``on_failure`` reads it too: the item has just given up (what no attempt ended, it
    ends)."""
    return _LAST_ATTEMPT.get()


def queue_for(name):
    return QUEUE_OF.get(name) or PREFIX_QUEUES.get(name.split(".", 1)[0], "default")


def _route(name, queue):
    if queue is not None and queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r} for {name!r}; one of {QUEUES}")
    QUEUE_OF[name] = queue or PREFIX_QUEUES.get(name.split(".", 1)[0], "default")


def job(name, queue=None, on_failure=None):
    """Register a job run from the outbox; ``queue`` overrides the routing by name.
    ``on_failure(exc, **payload)`` runs in a unit of work of its own after a failed attempt
    was rolled back (to leave a note an admin must see, which the rollback would undo)."""

    def register(fn):
        JOBS[name] = fn
        if on_failure is not None:
            ON_FAILURE[name] = on_failure
        _route(name, queue)
        return fn

    return register


def periodic(name, every, queue=None):
    """Register periodic work, run every ``every`` seconds by the one scheduler."""

    def register(fn):
        PERIODIC[name] = (every, fn)
        _route(name, queue)
        return fn

    return register


def enqueue(name, *, run_after=None, dedupe_key=None, **payload):
    """Record work to do once the current transaction commits. Pass ids, not objects.
    Returns the item's id, or None when an item with ``dedupe_key`` exists already."""
    if name not in JOBS:
        raise KeyError(f"unknown job {name!r}")
    now = utcnow()
    due_now = run_after is None or run_after <= now
    run_after = run_after or now
    item_id = db.session.execute(
        _insert_item(db.engine.dialect.name),
        {
            "job": name,
            "payload": payload,
            "dedupe_key": dedupe_key,
            "created_at": now,
            "run_after": run_after,
            # Handed to Redis right after the commit: its lease starts now.
            "dispatched_at": now if due_now and not _inline() else None,
        },
    ).scalar()
    if item_id is not None:
        db.session.info.setdefault("outbox_new", []).append((item_id, name, run_after))
    return item_id


@cache
def _insert_item(dialect_name):
    """Built once (per dialect): one statement that writes the item unless its dedupe key
    is taken (a look-up then an insert took two, and the ORM's flush of the item cost more
    than the statement: every booking records six). A key taken concurrently is waited
    for, then skipped, where an insert alone would fail the caller's whole unit of work."""
    table = OutboxItem.__table__
    given = ("job", "payload", "dedupe_key", "created_at", "run_after", "dispatched_at")
    return (
        insert_for(dialect_name)(table)
        .values({**bind_columns(table, given), "attempts": 0})
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(table.c.id)
    )


def _inline():
    return bool(current_app.config["JOBS_INLINE"])


def _lease():
    return timedelta(seconds=setting("JOBS_DISPATCH_LEASE"))


# --- handing items over after the commit -------------------------------------------


@event.listens_for(Session, "after_commit")
def _after_commit(session):
    if session.in_nested_transaction():
        return  # a SAVEPOINT released: the real commit is still to come
    items = session.info.pop("outbox_new", [])
    now = utcnow()
    due = {
        item_id: name for item_id, name, run_after in items if run_after is None or run_after <= now
    }
    if due:
        _dispatch(due)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session):
    if not session.in_nested_transaction():
        session.info.pop("outbox_new", None)


# A rolled-back SAVEPOINT takes back the items recorded inside it, and only those: their
# ids are forgotten too, since SQLite gives a rolled-back row's id to the next insert (a
# forgotten id handed over would run that other item, perhaps before it is due).
# (Weakly keyed: SQLAlchemy ends the savepoint's transaction before its soft rollback.)
@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session, transaction):
    if transaction.nested:
        marks = session.info.setdefault("outbox_marks", weakref.WeakKeyDictionary())
        marks[transaction] = len(session.info.get("outbox_new", ()))


@event.listens_for(Session, "after_soft_rollback")
def _forget_savepoints_items(session, previous_transaction):
    if previous_transaction.nested:
        mark = session.info.get("outbox_marks", {}).get(previous_transaction)
        if mark is not None:
            del session.info.get("outbox_new", [])[mark:]


_inline_queue = None


def hand_over(ids):
    """Hand these (committed) items to a worker now, whatever their lease: an admin's
    retry. Call after the commit that made them due. True when they were handed over (or
    run, embedded); False when Redis did not take them: their lease is released and the
    next sweep hands them over once Redis answers (so they must be under ``MAX_ATTEMPTS``)."""
    ids = list(ids)
    if not ids:
        return True
    if not _inline():
        with db.engine.begin() as conn:
            conn.execute(
                sa.update(OutboxItem).where(OutboxItem.id.in_(ids)).values(dispatched_at=utcnow())
            )
    with _again():
        return _dispatch(ids)


# Set while a sweep or an admin's retry hands items over again: their jobs are not "fresh"
# (an item's last attempt keeps a job of its own; ``worker.take_waiting_items``). A context
# variable, so that ``_dispatch(ids)`` keeps its one argument (tests replace it).
_AGAIN = contextvars.ContextVar("outbox_handed_over_again", default=False)


@contextmanager
def _again():
    token = _AGAIN.set(True)
    try:
        yield
    finally:
        _AGAIN.reset(token)


# Set while an RQ job runs outbox items: its ``_Share``. What its items' own commits make
# due on its queue runs next in the same job instead of going through Redis.
_HERE = contextvars.ContextVar("outbox_items_run_here", default=None)


class _Share:
    """A running RQ job's room for more items (``JOBS_PER_RQ_JOB`` in all, its own
    included), and the items its items' commits made due on its queue, kept to run next."""

    def __init__(self, queue, room):
        self.queue, self.room, self.kept = queue, room, {}

    def keep(self, ids, names):
        """Keep what this job has room to run next; the ids to hand to Redis now."""
        handed = []
        for item_id in ids:
            if queue_for(names[item_id]) == self.queue and len(self.kept) < self.room:
                self.kept[item_id] = names[item_id]
            else:
                handed.append(item_id)
        return handed

    def take(self, more):
        """Count ``more`` (ids about to run here) against the room; returns them."""
        for item_id in more:
            self.kept.pop(item_id, None)
        self.room -= len(more)
        return more


def _kept_here(ids, names):
    """The ids to hand to Redis: those the running job (``_HERE``) does not keep."""
    share = _HERE.get()
    return ids if share is None else share.keep(ids, names)


def _dispatch(ids):
    """Run the items in-process (embedded mode) or put them on their RQ queues. ``ids``: a
    list, or a dict {id: job name} when the caller knows the names (saves a query). Items a
    commit hands over are fresh: a job running before them may take them over. False when
    Redis did not take them (their lease released for the next sweep), else True."""
    app = current_app._get_current_object()
    names = ids if isinstance(ids, dict) else None
    ids = list(ids)
    if app.config["JOBS_INLINE"]:
        if app.config.get("JOBS_INLINE_THREAD"):
            _inline_worker(app).put(ids)
        else:
            # Tests: run right now, in a context (and so a session) of its own.
            for item_id in ids:
                with app.app_context():
                    run_outbox_item(item_id, reraise=False)
        return True
    if names is not None and not _AGAIN.get():
        ids = _kept_here(ids, names)
        if not ids:
            return True
    if names is None:
        with db.engine.connect() as conn:
            names = dict(
                conn.execute(
                    sa.select(OutboxItem.id, OutboxItem.job).where(OutboxItem.id.in_(ids))
                ).all()
            )
    try:
        enqueue_outbox_items(
            rq.queues,
            run_outbox_items,
            [(i, queue_for(names[i])) for i in ids if i in names],
            timeout=JOB_TIMEOUT,
            failure_ttl=FAILED_JOB_TTL,
            per_job=int(setting("JOBS_PER_RQ_JOB")),
            committed=not _AGAIN.get(),
        )
    except Exception:
        # Redis away: release the lease so the next sweep hands them over.
        log.exception("could not enqueue outbox items %s", ids[:20])
        _release(ids)
        return False
    return True


def _release(ids):
    try:
        with db.engine.begin() as conn:
            conn.execute(
                sa.update(OutboxItem)
                .where(OutboxItem.id.in_(ids), OutboxItem.done_at.is_(None))
                .values(dispatched_at=None)
            )
    except Exception:  # the lease runs out on its own
        log.exception("could not release outbox items")


def _inline_worker(app):
    global _inline_queue
    if _inline_queue is None:
        _inline_queue = queue.Queue()

        def work():
            while True:
                ids = _inline_queue.get()
                for item_id in ids:
                    with app.app_context():
                        try:
                            run_outbox_item(item_id, reraise=False)
                        except Exception:
                            log.exception("inline job failed")

        threading.Thread(target=work, name="inline-jobs", daemon=True).start()
    return _inline_queue


# --- running one item --------------------------------------------------------------


class GaveUp(Exception):
    """An item failed its last attempt: RQ records the job in its failed registry."""


def run_outbox_items(ids):
    """What an RQ job runs: its outbox items one after another, each its own unit of work in
    a fresh session; then the items their own commits made due on this job's queue (a
    confirmation's mails), which never go through Redis; then those of the fresh jobs
    waiting behind it in its queue. Up to ``JOBS_PER_RQ_JOB`` items in all, for at most
    ``TAKE_OVER_SECONDS``: under load every commit is a job of its own, and RQ's cost per
    job is more than a small job's (``worker.take_waiting_items``). Only what fits in that
    share is kept (the rest goes to Redis at its commit, for any worker); what is kept and
    not run in time goes to Redis when the job ends; one lost with this worker is handed
    over again when its lease runs out, as a job Redis lost is. An item that gave up does
    not stop the others; the job then fails (so RQ's failed registry shows it) naming every
    item that gave up."""
    gave_up = []
    rq_job = get_current_job()
    if rq_job is None:
        _run_each(ids, gave_up)
    else:
        share = _Share(rq_job.origin, int(setting("JOBS_PER_RQ_JOB")) - len(ids))
        token = _HERE.set(share)
        try:
            _run_each(ids, gave_up)
            until = time.monotonic() + TAKE_OVER_SECONDS
            while share.room > 0 and time.monotonic() < until:
                more = list(share.kept) or take_waiting_items(rq_job, share.room)
                if not more:
                    break
                _run_each(share.take(more), gave_up)
        finally:
            _HERE.reset(token)
            if share.kept:  # out of time (or the job failed): to Redis, as committed
                _dispatch(dict(share.kept))
    if gave_up:
        raise GaveUp("; ".join(gave_up))


def _run_each(ids, gave_up):
    for item_id in ids:
        try:
            run_outbox_item(item_id)
        except GaveUp as exc:
            gave_up.append(str(exc))
        finally:
            db.session.remove()


def run_outbox_item(item_id, reraise=True):
    """Run one item exactly once: its effects and its 'done' mark commit together (the job
    is the unit of work; use cases it calls nest as savepoints). A failure is recorded on
    the item and retried on the outbox's backoff; with ``reraise`` the last failure
    (``MAX_ATTEMPTS``) is raised as ``GaveUp`` so RQ keeps the job among its failed ones."""
    started = time.monotonic()
    name, payload = None, {}
    doing = DOING.set(f"outbox item {item_id}")
    last = _LAST_ATTEMPT.set(False)
    try:
        with unit_of_work():
            claimed = db.session.execute(
                _claim_item(db.engine.dialect.name, len(_CLAIM_READS)), {"id": item_id}
            ).one_or_none()
            if claimed is None or claimed.done_at is not None:
                return
            for (_, keep), value in zip(_CLAIM_READS, claimed[4:], strict=True):
                keep(value)
            _LAST_ATTEMPT.set(claimed.attempts >= MAX_ATTEMPTS - 1)
            name, payload = claimed.job, dict(claimed.payload or {})
            SQLITE_LOCK.note(f"job {name} (outbox item {item_id})")
            JOBS[name](**payload)
            db.session.execute(_mark_done(), {"item_id": item_id, "at": utcnow()})
    except Exception as exc:
        try:
            attempts = _record_failure(item_id, exc)
        except Busy:
            # Embedded, the process lock still taken: the item stays as it was, due, and
            # the next sweep hands it over again (embedded, it hands over every due item).
            _log_job(name, item_id, "failed", started, error=repr(exc))
            return
        rq_job = get_current_job()
        if rq_job is not None:  # its retry, or an admin's, is not held by this job
            let_go(rq_job, item_id)
        if name in ON_FAILURE:
            with unit_of_work():
                ON_FAILURE[name](exc, **payload)
        _log_job(name, item_id, "failed", started, error=repr(exc))
        if reraise and attempts is not None and attempts >= MAX_ATTEMPTS:
            raise GaveUp(
                f"outbox item {item_id} ({name}) failed {attempts} times: {exc!r}"
            ) from exc
        return
    finally:
        _LAST_ATTEMPT.reset(last)
        DOING.reset(doing)
    _log_job(name, item_id, "done", started)


@cache
def _claim_item(dialect_name, reads):
    """Built once: the item's row, locked until the job's commit on PostgreSQL (a second
    runner of the same item waits, then finds it done), with the first ``reads`` columns
    registered by ``read_with_claim``. Columns, not the ORM object: the runner needs four
    values, and every job a booking makes (six) paid for the object's load and its flush."""
    table = OutboxItem.__table__
    extra = [column for column, _ in _CLAIM_READS[:reads]]
    query = sa.select(
        table.c.job, table.c.payload, table.c.done_at, table.c.attempts, *extra
    ).where(table.c.id == sa.bindparam("id", type_=table.c.id.type))
    return query.with_for_update() if dialect_name == "postgresql" else query


@cache
def _mark_done():
    table = OutboxItem.__table__
    return (
        sa.update(table)
        .where(table.c.id == sa.bindparam("item_id", type_=table.c.id.type))
        .values(
            done_at=sa.bindparam("at", type_=table.c.done_at.type),
            attempts=table.c.attempts + 1,
        )
    )


def retry_delay(attempts):
    """Seconds to wait after the ``attempts``-th failure (the outbox's one schedule)."""
    return BACKOFF(SimpleNamespace(attempt_number=attempts))


def _record_failure(item_id, exc):
    with unit_of_work():
        item = db.session.get(OutboxItem, item_id)
        if item is None:
            return None
        item.attempts += 1
        item.last_error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
        item.run_after = utcnow() + timedelta(seconds=retry_delay(item.attempts))
        item.dispatched_at = None  # the sweep hands it over again when it is due
        return item.attempts


def _log_job(name, item_id, status, started, error=None):
    from portal.logs import log_event

    log_event(
        "job",
        job=name,
        item=item_id,
        status=status,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
        error=error,
    )


@periodic("jobs.sweep_outbox", every=30)
def sweep_outbox(limit=500):
    """Hand over what is due and not done: delayed items, items due for a retry, and items
    Redis lost (their lease ran out). An item still waiting in its queue is not queued
    twice (the queue refuses a job id it holds). Returns how many Redis now has (queued
    now, or held by a job still to run them); 0 when Redis refused them."""
    now = utcnow()
    query = (
        sa.select(OutboxItem.id, OutboxItem.job)
        .where(
            OutboxItem.done_at.is_(None),
            OutboxItem.run_after <= now,
            OutboxItem.attempts < MAX_ATTEMPTS,
        )
        .order_by(OutboxItem.id)
        .limit(limit)
    )
    if _inline():
        rows = db.session.execute(query).all()
        db.session.rollback()
    else:
        with unit_of_work():
            query = query.where(
                sa.or_(
                    OutboxItem.dispatched_at.is_(None), OutboxItem.dispatched_at <= now - _lease()
                )
            )
            if db.engine.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)  # a second sweeper skips
            rows = db.session.execute(query).all()
            if rows:
                db.session.execute(
                    sa.update(OutboxItem)
                    .where(OutboxItem.id.in_([r.id for r in rows]))
                    .values(dispatched_at=now)
                )
    if rows:
        with _again():
            if not _dispatch({r.id: r.job for r in rows}):
                return 0  # Redis refused them: released for the next sweep
    return len(rows)


# --- the periodic schedule -----------------------------------------------------------


def run_periodic(name):
    """Entry point for the scheduler (RQ cron, the in-process ticker, or `flask jobs tick`).
    The work commits as it goes (one use case per item it handles); what is left commits
    at the end, or rolls back on an error."""
    every, fn = PERIODIC[name]
    started = time.monotonic()
    doing = DOING.set(f"periodic {name}")
    try:
        result = fn()
        db.session.commit()
        _log_job(name, None, "done", started)
        return result
    except Exception as exc:  # Busy too (embedded): the next tick runs it again
        db.session.rollback()
        _log_job(name, None, "failed", started, error=repr(exc))
        raise
    finally:
        DOING.reset(doing)


def register_schedule(app):
    for name, (every, _fn) in sorted(PERIODIC.items()):
        rq.cron_register(run_periodic, every, args=[name], queue=queue_for(name))


def start_inline_ticker(app, period=5):
    """The embedded mode's scheduler: one daemon thread ticking every periodic job. A job
    that has not run yet is due at the first tick (as RQ's cron runs it at once); then
    every ``every`` seconds. (Not ``monotonic() - 0``: that clock counts from the machine's
    boot, so first runs depended on its uptime.)"""
    last = {}

    def tick():
        while True:
            now = time.monotonic()
            for name, (every, _fn) in list(PERIODIC.items()):
                if name not in last or now - last[name] >= every:
                    last[name] = now
                    with app.app_context():
                        try:
                            run_periodic(name)
                        except Exception:
                            log.exception("periodic job %s failed", name)
            time.sleep(period)

    threading.Thread(target=tick, name="inline-scheduler", daemon=True).start()
