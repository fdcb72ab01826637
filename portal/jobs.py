"""Background work: the job registry, the enqueue helper, the runner and the periodic schedule.

Production: after the commit each outbox item becomes an RQ job (job id ``outbox-<id>``);
``flask rq worker`` runs it inside the app context; ``flask rq cron`` ticks the periodic work.
Embedded default: the same items run in-process after the commit (in a background thread
for ``make run``, synchronously in tests), and a thread ticks the periodic work."""
import logging
import queue
import threading
import time
import traceback
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from rq import Retry
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.extensions import db
from portal.outbox import OutboxItem

log = logging.getLogger("portal.jobs")

JOBS = {}  # name -> function(**payload)
PERIODIC = {}  # name -> (seconds, function())


class RetryLater(Exception):
    """A transient failure: the item stays pending and is tried again with backoff."""


def job(name):
    def register(fn):
        JOBS[name] = fn
        return fn
    return register


def periodic(name, every):
    """Register periodic work, run every ``every`` seconds by the one scheduler."""
    def register(fn):
        PERIODIC[name] = (every, fn)
        return fn
    return register


def enqueue(name, *, run_after=None, dedupe_key=None, **payload):
    """Record work to do once the current transaction commits. Pass ids, not objects."""
    if name not in JOBS:
        raise KeyError(f"unknown job {name!r}")
    if dedupe_key is not None:
        existing = db.session.scalar(
            sa.select(OutboxItem).where(OutboxItem.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    item = OutboxItem(job=name, payload=payload, dedupe_key=dedupe_key,
                      run_after=run_after or utcnow())
    db.session.add(item)
    return item


# --- handing items over after the commit -------------------------------------------

@event.listens_for(Session, "after_flush")
def _collect(session, flush_context):
    # Ids and times are read now: after the commit the objects are expired.
    new = [(o.id, o.run_after) for o in session.new if isinstance(o, OutboxItem)]
    if new:
        session.info.setdefault("outbox_new", []).extend(new)


@event.listens_for(Session, "after_commit")
def _after_commit(session):
    if session.in_nested_transaction():
        return  # a SAVEPOINT released: the real commit is still to come
    items = session.info.pop("outbox_new", [])
    now = utcnow()
    due = [item_id for item_id, run_after in items if run_after is None or run_after <= now]
    if due:
        _dispatch(due)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session):
    # A rolled-back SAVEPOINT keeps the outer transaction's items; an id it took away is
    # simply not found when it runs.
    if not session.in_nested_transaction():
        session.info.pop("outbox_new", None)


_inline_queue = None


def _dispatch(ids):
    app = current_app._get_current_object()
    if app.config["JOBS_INLINE"]:
        if app.config.get("JOBS_INLINE_THREAD"):
            _inline_worker(app).put(ids)
        else:
            # Tests: run right now, in a context (and so a session) of its own.
            for item_id in ids:
                with app.app_context():
                    run_outbox_item(item_id, reraise=False)
        return
    from portal.extensions import rq
    for item_id in ids:
        try:
            rq.get_queue("default").enqueue(
                run_outbox_item, item_id, job_id=f"outbox-{item_id}",
                retry=Retry(max=3, interval=[10, 60, 300]), job_timeout=300)
        except Exception:  # Redis away: the periodic sweep will hand it over later.
            log.exception("could not enqueue outbox item %s", item_id)


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

def run_outbox_item(item_id, reraise=True):
    """Run one item exactly once: its effects and its 'done' mark commit together."""
    query = sa.select(OutboxItem).where(OutboxItem.id == item_id)
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update()
    item = db.session.scalar(query)
    if item is None or item.done_at is not None:
        db.session.rollback()
        return
    started = time.monotonic()
    name, payload = item.job, dict(item.payload or {})
    try:
        JOBS[name](**payload)
        item.done_at = utcnow()
        item.attempts += 1
        db.session.commit()
        _log_job(name, item_id, "done", started)
    except Exception as exc:
        db.session.rollback()
        _record_failure(item_id, exc)
        _log_job(name, item_id, "failed", started, error=repr(exc))
        if reraise:
            raise


def _record_failure(item_id, exc):
    item = db.session.get(OutboxItem, item_id)
    if item is None:
        return
    item.attempts += 1
    item.last_error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
    # Back off: 30 s, 2 min, 8 min …; the periodic sweep picks it up again.
    item.run_after = utcnow() + timedelta(seconds=30 * 4 ** min(item.attempts - 1, 5))
    db.session.commit()


def _log_job(name, item_id, status, started, error=None):
    from portal.logs import log_event
    log_event("job", job=name, item=item_id, status=status,
              duration_ms=round((time.monotonic() - started) * 1000, 1), error=error)


MAX_ATTEMPTS = 8


@periodic("jobs.sweep_outbox", every=30)
def sweep_outbox():
    """Hand over what is due and not done: delayed items and anything lost on the way."""
    now = utcnow()
    ids = db.session.scalars(
        sa.select(OutboxItem.id)
        .where(OutboxItem.done_at.is_(None), OutboxItem.run_after <= now,
               OutboxItem.attempts < MAX_ATTEMPTS)
        .order_by(OutboxItem.id).limit(500)).all()
    db.session.rollback()
    if ids:
        _dispatch(list(ids))
    return len(ids)


# --- the periodic schedule -----------------------------------------------------------

def run_periodic(name):
    """Entry point for the scheduler (RQ cron, the in-process ticker, or `flask jobs tick`)."""
    every, fn = PERIODIC[name]
    started = time.monotonic()
    try:
        result = fn()
        db.session.commit()
        _log_job(name, None, "done", started)
        return result
    except Exception as exc:
        db.session.rollback()
        _log_job(name, None, "failed", started, error=repr(exc))
        raise


def register_schedule(app):
    from portal.extensions import rq
    for name, (every, _fn) in sorted(PERIODIC.items()):
        rq.cron_register(run_periodic, every, args=[name])


def start_inline_ticker(app, period=5):
    """The embedded mode's scheduler: one daemon thread ticking every periodic job."""
    last = {}

    def tick():
        while True:
            now = time.monotonic()
            for name, (every, _fn) in list(PERIODIC.items()):
                if now - last.get(name, 0) >= every:
                    last[name] = now
                    with app.app_context():
                        try:
                            run_periodic(name)
                        except Exception:
                            log.exception("periodic job %s failed", name)
            time.sleep(period)

    threading.Thread(target=tick, name="inline-scheduler", daemon=True).start()
