"""Background work of cancellations and refunds: executing gateway refunds, the poll for
retries and stragglers, and the notices (patient, providers, admins).

Importing this module registers the jobs, the periodic poll and (through
``portal.refunds.handlers``) the ``refund.*`` webhook handlers."""
import logging

import sqlalchemy as sa

from portal import jobs
from portal.db import utcnow
from portal.domain.rates import format_inr
from portal.extensions import db
from portal.refunds import handlers  # noqa: F401  (registers the webhook handlers)
from portal.refunds import service
from portal.refunds.models import GATEWAY, PENDING, Refund, RefundApproval

log = logging.getLogger("portal.refunds")


@jobs.job("refunds.execute")
def execute(refund_id):
    """Create one gateway refund at Razorpay (see ``service.execute_refund``)."""
    service.execute_refund(refund_id)


@jobs.periodic("refunds.poll", every=120)
def poll_refunds(now=None, limit=200):
    """Retries that fell due (no answer or a 5xx: same key), refunds whose job was lost,
    and stragglers (pending at Razorpay longer than ``REFUND_STRAGGLER_MINUTES``, their
    webhook late or lost): fetched and applied. One commit per refund."""
    now = now or utcnow()
    due = db.session.scalars(
        sa.select(Refund.id).where(
            Refund.destination == GATEWAY, Refund.status == PENDING,
            Refund.superseded.is_(False), Refund.razorpay_refund_id.is_(None),
            sa.or_(Refund.next_retry_at <= now,
                   sa.and_(Refund.next_retry_at.is_(None),
                           Refund.created_at <= now - service.retry_delay(1))))
        .order_by(Refund.id).limit(limit)).all()
    stragglers = db.session.scalars(
        sa.select(Refund.id).where(
            Refund.destination == GATEWAY, Refund.status == PENDING,
            Refund.razorpay_refund_id.is_not(None),
            Refund.updated_at <= now - service.straggler_age())
        .order_by(Refund.id).limit(limit)).all()
    db.session.rollback()
    done = 0
    for refund_id, work in [(i, service.execute_refund) for i in due] + \
            [(i, service.sync_refund) for i in stragglers]:
        try:
            work(refund_id, now=now)
            db.session.commit()
            done += 1
        except Exception:
            db.session.rollback()
            log.exception("refund %s: poll failed", refund_id)
    return done


# --- notices ---------------------------------------------------------------------------------

@jobs.job("refunds.booking_cancelled")
def booking_cancelled(booking_id, by=None, refund=None, reason=None):
    """Reminders withdrawn (again, idempotent) and the patient, providers and admins told."""
    from portal.notify.tasks import on_booking_cancelled
    on_booking_cancelled(booking_id, by=by, refund=refund, reason=reason)


def _patient_link(refund_or_item_visit_id):
    from portal.notify.links import visit_path
    return visit_path("patient", visit_id=refund_or_item_visit_id)


@jobs.job("refunds.refund_processed_notice")
def refund_processed_notice(refund_id):
    from portal.notify import notify_user
    refund = db.session.get(Refund, refund_id)
    if refund is None:
        return
    where = "your wallet" if refund.destination == "WALLET" else "your original payment method"
    notify_user(refund.patient_id, "refund.processed",
                f"Refund of {format_inr(refund.amount)} processed",
                f"{format_inr(refund.amount)} for {refund.booking.service.name} "
                f"(visit {refund.visit.number}) has been refunded to {where}.",
                link=_patient_link(refund.visit_id), dedupe_key=f"refund-processed:{refund.id}")


@jobs.job("refunds.refund_notice")
def refund_notice(booking_id, amount):
    from portal.booking.models import IndividualBooking
    from portal.notify import notify_user
    item = db.session.get(IndividualBooking, booking_id)
    if item is None:
        return
    notify_user(item.visit.patient_id, "refund.approved",
                f"Additional refund of {format_inr(amount)}",
                f"An additional refund of {format_inr(amount)} for {item.service.name} "
                f"(visit {item.visit.number}) has been approved.",
                link=_patient_link(item.master_id))


@jobs.job("refunds.failed_alert")
def failed_alert(refund_id):
    """HIGH admin alert: a refund needs a person (retry it or send it to the wallet)."""
    from portal.notify import raise_alert
    refund = db.session.get(Refund, refund_id)
    if refund is None:
        return
    raise_alert(service.REFUND_FAILED_ALERT, f"Refund failed: {format_inr(refund.amount)}",
                f"Refund {refund.id} for visit {refund.visit.number} failed "
                f"after {refund.attempts or 1} attempt(s): {refund.failure_reason or ''}",
                link="/admin/refunds?status=FAILED", priority="HIGH",
                dedupe_key=f"refund-failed:{refund.id}")


@jobs.job("refunds.approval_alert")
def approval_alert(approval_id):
    from portal.notify import raise_alert
    approval = db.session.get(RefundApproval, approval_id)
    if approval is None:
        return
    raise_alert("ADJUSTMENT_PENDING_APPROVAL",
                f"Refund override awaits approval: {format_inr(approval.override_amount)}",
                f"{approval.requested_by.name} asks to refund "
                f"{format_inr(approval.override_amount)} (calculated "
                f"{format_inr(approval.calculated)}) for booking {approval.booking_id}: "
                f"{approval.reason}",
                link="/admin/approvals", dedupe_key=f"refund-approval:{approval.id}")
