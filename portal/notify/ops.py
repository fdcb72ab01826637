"""The failed-work view for admins: outbox items not done (the durable record: attempts,
last error, next try), failed deliveries, and RQ's failed job registry when Redis is in
use. Retrying an outbox item hands it to a worker again after the commit; requeueing an
outbox job from RQ's registry is the same retry, of each of its items."""

import logging
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from portal import jobs
from portal.accounts.service import PermissionDenied
from portal.audit.service import record
from portal.db import unit_of_work, utcnow
from portal.extensions import db
from portal.notify.models import DELIVERY, MAIL, Delivery, DeliveryStatus, MailMessage, MailStatus
from portal.outbox import OutboxItem

log = logging.getLogger("portal.notify.ops")


def outbox_problems(limit=200):
    """Items not done: failed at least once first (most attempts first), then waiting."""
    return db.session.scalars(
        sa.select(OutboxItem)
        .where(OutboxItem.done_at.is_(None))
        .order_by(OutboxItem.attempts.desc(), OutboxItem.run_after, OutboxItem.id)
        .limit(limit)
    ).all()


def outbox_counts():
    pending = (
        db.session.scalar(
            sa.select(sa.func.count(OutboxItem.id)).where(
                OutboxItem.done_at.is_(None), OutboxItem.attempts == 0
            )
        )
        or 0
    )
    failing = (
        db.session.scalar(
            sa.select(sa.func.count(OutboxItem.id)).where(
                OutboxItem.done_at.is_(None),
                OutboxItem.attempts > 0,
                OutboxItem.attempts < jobs.MAX_ATTEMPTS,
            )
        )
        or 0
    )
    dead = (
        db.session.scalar(
            sa.select(sa.func.count(OutboxItem.id)).where(
                OutboxItem.done_at.is_(None), OutboxItem.attempts >= jobs.MAX_ATTEMPTS
            )
        )
        or 0
    )
    return {
        "pending": pending,
        "retrying": failing,
        "gave_up": dead,
        "max_attempts": jobs.MAX_ATTEMPTS,
    }


def failed_deliveries(limit=100):
    return db.session.scalars(
        sa.select(Delivery)
        .where(Delivery.status.in_((DeliveryStatus.FAILED, DeliveryStatus.RETRYING)))
        .order_by(Delivery.updated_at.desc())
        .limit(limit)
    ).all()


class Outcome(StrEnum):
    """What became of an admin's retry or requeue (the view words it)."""

    MISSING = "missing"  # no such outbox item; not in RQ's failed registry
    DONE = "done"  # done already: nothing to do
    RUNNING = "running"  # a worker holds it at this moment: nothing done
    HANDED = "handed"  # reopened and handed to a worker
    WAITING = "waiting"  # reopened; Redis did not take it: the sweep will, once it answers
    REQUEUED = "requeued"  # a job of the schedule, put back on its queue by RQ
    REDIS_AWAY = "redis_away"  # Redis could not be reached: nothing done


def _require_admin(actor):
    if not getattr(actor, "is_admin", False):
        raise PermissionDenied("Only administrators can retry background jobs.")


def retry_outbox_item(admin, item_id):
    """Due now, whatever its backoff; its mail/text delivery is reopened if it had given up,
    and an item that gave up gets one attempt more (``MAX_ATTEMPTS - 1`` recorded: the
    sweep takes it if Redis cannot at this moment; failing again, it gives up again).
    Handed to a worker once its unit of work is committed. Returns ``(Outcome, item)``:
    MISSING (item None), DONE, RUNNING (a worker holds its row now: on PostgreSQL the
    retry does not wait for it, and nothing is changed or audited), HANDED or WAITING."""
    _require_admin(admin)
    with unit_of_work():
        # A running job holds its row (``FOR UPDATE``) until it commits, up to its timeout:
        # skip it rather than wait (SQLite has no row locks and ignores this).
        item = db.session.scalar(
            sa.select(OutboxItem).where(OutboxItem.id == item_id).with_for_update(skip_locked=True)
        )
        if item is None:
            item = db.session.get(OutboxItem, item_id)  # a plain read does not wait
            if item is None:
                return Outcome.MISSING, None
            if item.done_at is None:
                return Outcome.RUNNING, item
        if item.done_at is not None:
            return Outcome.DONE, item
        payload = dict(item.payload or {})
        if item.job == "notify.send_mail" and payload.get("message_id"):
            mail = db.session.get(MailMessage, payload["message_id"])
            if mail is not None and mail.status == MailStatus.FAILED:
                MAIL.move(mail, MailStatus.QUEUED)
                _reopen(sa.select(Delivery).where(Delivery.mail_id == mail.id))
        elif item.job == "notify.send_text" and payload.get("delivery_id"):
            _reopen(sa.select(Delivery).where(Delivery.id == payload["delivery_id"]))
        record(
            admin,
            "job.retry",
            "outbox",
            item.id,
            after={"job": item.job, "attempts": item.attempts, "last_error": item.last_error},
        )
        item.attempts = min(item.attempts, jobs.MAX_ATTEMPTS - 1)
        item.run_after = utcnow()
    handed = jobs.hand_over([item.id])
    return (Outcome.HANDED if handed else Outcome.WAITING), item


def _reopen(query):
    for delivery in db.session.scalars(query):
        if delivery.status == DeliveryStatus.FAILED:
            DELIVERY.move(delivery, DeliveryStatus.RETRYING)


# --- RQ's own record (production) ------------------------------------------------------------


def redis_configured():
    return bool(current_app.config.get("REDIS_URL")) and not current_app.config.get("JOBS_INLINE")


def rq_failed_jobs(limit=100):
    """``(jobs, error)``: RQ's failed job registry of every queue, newest first."""
    if not redis_configured():
        return [], None
    from rq.job import Job

    rq_ext = current_app.extensions["rq"]
    found = []
    try:
        for name, queue in rq_ext.queues.items():
            registry = queue.failed_job_registry
            ids = registry.get_job_ids(0, limit - 1)
            for job in Job.fetch_many(ids, connection=queue.connection):
                if job is None:
                    continue
                result = job.latest_result()
                ended = job.ended_at
                found.append(
                    {
                        "id": job.id,
                        "queue": name,
                        "func": job.func_name,
                        "args": job.args,
                        # RQ's times are UTC (naive in older records): the page shows
                        # clinic time.
                        "ended_at": ended and ended.replace(tzinfo=ended.tzinfo or UTC),
                        "error": _last_line(getattr(result, "exc_string", None)),
                    }
                )
    except Exception as exc:  # Redis away: the page still shows the outbox
        log.warning("could not read RQ's failed registry: %s", exc)
        return found, type(exc).__name__
    found.sort(key=lambda j: j["ended_at"] or _NEVER, reverse=True)
    return found[:limit], None


_NEVER = datetime.min.replace(tzinfo=UTC)


def requeue_rq_job(admin, queue_name, job_id):
    """Put a job of RQ's failed registry back to work; returns an ``Outcome``. An outbox
    job's items go the way of "Retry now" (``retry_outbox_item``, each audited there): a
    mail or text that gave up is reopened first, where RQ's own requeue ran the job on a
    FAILED mail, which counts as done, and marked the row done unsent. Its registry entry
    then goes (unless an item is running or waits for Redis). Any other job (the
    schedule's ``run_periodic``) is requeued by RQ and audited here. Redis away:
    REDIS_AWAY, nothing done."""
    _require_admin(admin)
    queue = current_app.extensions["rq"].queues.get(queue_name) if redis_configured() else None
    if queue is None:
        return Outcome.MISSING
    registry = queue.failed_job_registry
    try:
        job = queue.fetch_job(job_id) if job_id in registry else None
        if job is None:
            return Outcome.MISSING
        items = _outbox_items(job)
        if items is None:
            registry.requeue(job)
    except RedisError as exc:
        log.warning("could not requeue RQ job %s: %s", job_id, exc)
        return Outcome.REDIS_AWAY
    if items is None:
        with unit_of_work():
            record(admin, "job.requeue", "rq_job", job_id, after={"queue": queue_name})
        return Outcome.REQUEUED
    outcomes = {retry_outbox_item(admin, item_id)[0] for item_id in items}
    for outcome in (Outcome.RUNNING, Outcome.WAITING):
        if outcome in outcomes:
            return outcome  # the entry stays, for a later requeue
    try:
        # A one-item job was replaced by its retry's job (same id, gone from the registry);
        # a batch's entry, or that of a job whose items are all done, is removed here.
        if job_id in registry:
            registry.remove(job, delete_job=True)
    except RedisError as exc:  # the entry stays; requeueing it again retries nothing done
        log.warning("could not remove RQ job %s from the failed registry: %s", job_id, exc)
    return Outcome.HANDED if Outcome.HANDED in outcomes else Outcome.DONE


def _outbox_items(job):
    """The outbox item ids an RQ job runs (``jobs.run_outbox_items(ids)``), or None when it
    is not an outbox job."""
    run = jobs.run_outbox_items
    if job.func_name != f"{run.__module__}.{run.__qualname__}":
        return None
    return [int(item_id) for item_id in job.args[0]]


def _last_line(exc_info):
    lines = [line for line in (exc_info or "").strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""
