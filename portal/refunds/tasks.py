"""Background work of cancellations and refunds: executing gateway refunds and the poll for
retries and stragglers. (What the patient, providers and admins are told is the notify
capability's: ``portal.events`` → ``portal.notify.receivers``.)

Importing this module registers the jobs, the periodic poll and (through
``portal.refunds.handlers``) the ``refund.*`` webhook handlers."""

import logging

import sqlalchemy as sa

from portal import jobs
from portal.db import utcnow
from portal.domain.states import RefundStatus
from portal.extensions import db
from portal.refunds import execute, handlers  # noqa: F401  (handlers register themselves)
from portal.refunds.common import retry_delay, straggler_age
from portal.refunds.models import GATEWAY, Refund

log = logging.getLogger("portal.refunds")


@jobs.job("refunds.execute")
def execute_job(refund_id):
    """Create one gateway refund at Razorpay (see ``execute.execute_refund``)."""
    execute.execute_refund(refund_id)


@jobs.periodic("refunds.poll", every=120)
def poll_refunds(now=None, limit=200):
    """Retries that fell due (no answer or a 5xx: same key), refunds whose job was lost,
    and stragglers (pending at Razorpay longer than ``REFUND_STRAGGLER_MINUTES``, their
    webhook late or lost): fetched and applied. One unit of work per refund, so one
    that fails leaves the others done."""
    now = now or utcnow()
    due = db.session.scalars(
        sa.select(Refund.id)
        .where(
            Refund.destination == GATEWAY,
            Refund.status == RefundStatus.PENDING,
            Refund.superseded.is_(False),
            Refund.razorpay_refund_id.is_(None),
            sa.or_(
                Refund.next_retry_at <= now,
                sa.and_(Refund.next_retry_at.is_(None), Refund.created_at <= now - retry_delay(1)),
            ),
        )
        .order_by(Refund.id)
        .limit(limit)
    ).all()
    stragglers = db.session.scalars(
        sa.select(Refund.id)
        .where(
            Refund.destination == GATEWAY,
            Refund.status == RefundStatus.PENDING,
            Refund.razorpay_refund_id.is_not(None),
            Refund.updated_at <= now - straggler_age(),
        )
        .order_by(Refund.id)
        .limit(limit)
    ).all()
    done = 0
    for refund_id, work in [(i, execute.execute_refund) for i in due] + [
        (i, execute.sync_refund) for i in stragglers
    ]:
        try:
            work(refund_id, now=now)
        except Exception:
            log.exception("refund %s: poll failed", refund_id)
            continue
        done += 1
    return done
