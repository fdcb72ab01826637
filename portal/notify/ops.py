"""The failed-work view for admins: outbox items not done (the durable record: attempts,
last error, next try), failed deliveries, and RQ's failed job registry when Redis is in
use. Retrying an outbox item hands it to a worker again after the commit."""

import logging

import sqlalchemy as sa
from flask import current_app

from portal import jobs
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


def retry_outbox_item(admin, item_id):
    """Due now, whatever its backoff or attempt count; its mail/text delivery is reopened
    if it had given up. Returns the item (``None`` if unknown, unchanged if done). Handed
    to a worker once its unit of work is committed."""
    with unit_of_work():
        item = db.session.get(OutboxItem, item_id)
        if item is None or item.done_at is not None:
            return item
        payload = dict(item.payload or {})
        if item.job == "notify.send_mail" and payload.get("message_id"):
            mail = db.session.get(MailMessage, payload["message_id"])
            if mail is not None and mail.status == MailStatus.FAILED:
                MAIL.move(mail, MailStatus.QUEUED)
                _reopen(sa.select(Delivery).where(Delivery.mail_id == mail.id))
        elif item.job == "notify.send_text" and payload.get("delivery_id"):
            _reopen(sa.select(Delivery).where(Delivery.id == payload["delivery_id"]))
        item.run_after = utcnow()
        record(
            admin,
            "job.retry",
            "outbox",
            item.id,
            after={"job": item.job, "attempts": item.attempts, "last_error": item.last_error},
        )
    jobs.hand_over([item.id])
    return item


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
                found.append(
                    {
                        "id": job.id,
                        "queue": name,
                        "func": job.func_name,
                        "args": job.args,
                        "ended_at": job.ended_at,
                        "error": _last_line(getattr(result, "exc_string", None)),
                    }
                )
    except Exception as exc:  # Redis away: the page still shows the outbox
        log.warning("could not read RQ's failed registry: %s", exc)
        return found, type(exc).__name__
    found.sort(key=lambda j: str(j["ended_at"] or ""), reverse=True)
    return found[:limit], None


def requeue_rq_job(admin, queue_name, job_id):
    if not redis_configured():
        return False
    rq_ext = current_app.extensions["rq"]
    queue = rq_ext.queues.get(queue_name)
    if queue is None:
        return False
    registry = queue.failed_job_registry
    if job_id not in registry.get_job_ids():
        return False
    registry.requeue(job_id)
    with unit_of_work():
        record(admin, "job.requeue", "rq_job", job_id, after={"queue": queue_name})
    return True


def _last_line(exc_info):
    lines = [line for line in (exc_info or "").strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""
