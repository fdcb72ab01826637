"""Notices about refunds: processed (patient), an approved extra refund (patient), a
refund that needs a person and an override awaiting approval (admins). Jobs recorded by
``portal.notify.receivers`` when the refunds capability says what happened."""

from flask_babel import gettext as _

from portal import jobs
from portal.booking.models import IndividualBooking
from portal.domain.rates import format_inr
from portal.domain.states import RefundStatus
from portal.extensions import db
from portal.notify import alerts
from portal.notify.center import notify_user
from portal.notify.links import visit_path
from portal.notify.wording import speaking_to
from portal.refunds.models import WALLET, Refund, RefundApproval


def _patient_link(visit_id):
    return visit_path("patient", visit_id=visit_id)


@jobs.job("notify.refund_processed")
def refund_processed(refund_id):
    refund = db.session.get(Refund, refund_id)
    if refund is None:
        return
    amount = format_inr(refund.amount)
    with speaking_to(refund.patient_id):
        title = _("Refund of %(amount)s processed", amount=amount)
        values = dict(
            amount=amount, service=refund.booking.service.name, number=refund.visit.number
        )
        if refund.destination == WALLET:
            body = _(
                "%(amount)s for %(service)s (visit %(number)s) has been refunded to your wallet.",
                **values,
            )
        else:
            body = _(
                "%(amount)s for %(service)s (visit %(number)s) has been refunded to your "
                "original payment method.",
                **values,
            )
    notify_user(
        refund.patient_id,
        "refund.processed",
        title,
        body,
        link=_patient_link(refund.visit_id),
        dedupe_key=f"refund-processed:{refund.id}",
    )


@jobs.job("notify.refund_approved")
def refund_approved(booking_id, amount):
    item = db.session.get(IndividualBooking, booking_id)
    if item is None:
        return
    with speaking_to(item.visit.patient_id):
        title = _("Additional refund of %(amount)s", amount=format_inr(amount))
        body = _(
            "An additional refund of %(amount)s for %(service)s (visit %(number)s) has been "
            "approved.",
            amount=format_inr(amount), service=item.service.name, number=item.visit.number,
        )  # fmt: skip
    notify_user(
        item.visit.patient_id,
        "refund.approved",
        title,
        body,
        link=_patient_link(item.master_id),
    )


@jobs.job("notify.refund_failed")
def refund_failed(refund_id, episode=None):
    """HIGH admin alert: a refund needs a person (retry it or send it to the wallet).
    Once per ``episode`` (the refund's count of failures): failing again after being found
    at Razorpay or retried by an admin, it is news again, with the reason of the day. A
    job recorded before episodes were counted has none: the alert it made is the first."""
    refund = db.session.get(Refund, refund_id)
    if refund is None:
        return
    alerts.raise_alert(
        alerts.REFUND_FAILED,
        f"Refund failed: {format_inr(refund.amount)}",
        f"Refund {refund.id} for visit {refund.visit.number} failed "
        f"after {refund.attempts or 1} attempt(s): {refund.failure_reason or ''}",
        link=f"/admin/refunds?status={RefundStatus.FAILED}",
        dedupe_key=f"refund-failed:{refund.id}" + (f":{episode}" if episode else ""),
    )


@jobs.job("notify.refund_override_requested")
def refund_override_requested(approval_id):
    approval = db.session.get(RefundApproval, approval_id)
    if approval is None:
        return
    alerts.raise_alert(
        alerts.ADJUSTMENT_PENDING_APPROVAL,
        f"Refund override awaits approval: {format_inr(approval.override_amount)}",
        f"{approval.requested_by.name} asks to refund "
        f"{format_inr(approval.override_amount)} (calculated "
        f"{format_inr(approval.calculated)}) for booking {approval.booking_id}: "
        f"{approval.reason}",
        link="/admin/approvals",
        dedupe_key=f"refund-approval:{approval.id}",
    )
