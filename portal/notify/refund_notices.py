"""Notices about refunds: processed (patient), an approved extra refund (patient), a
refund that needs a person and an override awaiting approval (admins). Jobs recorded by
``portal.notify.receivers`` when the refunds capability says what happened.

What a refund did is told once, where it happens: the cancellation's notice
(``tasks.on_booking_cancelled``) and the approved further refund's say each part, the
wallet's "in your wallet now" and Razorpay's "on its way back" (``where_it_went``); only
Razorpay's confirmation of a part on its way, or a failed one sent to the wallet instead,
is told again ("refund processed")."""

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
from portal.refunds.lookup import refunds_made
from portal.refunds.models import WALLET, Refund, RefundApproval
from portal.refunds.money import split_of


def _patient_link(visit_id):
    return visit_path("patient", visit_id=visit_id)


def _parts(rows):
    split = split_of(rows)
    wallet, online = split.to_wallet, split.to_gateway
    return format_inr(wallet) if wallet else None, format_inr(online) if online else None


def refund_told(rows, total=None):
    """A cancellation's refund, in the current language: how much, and each part's place
    (in the wallet now; on its way back through Razorpay). Without rows (nothing recorded
    for it), ``total`` as "on its way"."""
    if not rows:
        return _("A refund of %(amount)s is on its way.", amount=format_inr(total or 0))
    amount = format_inr(sum(r.amount for r in rows))
    wallet, online = _parts(rows)
    if wallet and online:
        return _(
            "Your refund of %(amount)s: %(wallet)s is in your wallet now and %(online)s is on "
            "its way back to your original payment method.",
            amount=amount, wallet=wallet, online=online,
        )  # fmt: skip
    if wallet:
        return _("Your refund of %(amount)s is in your wallet now.", amount=amount)
    return _(
        "Your refund of %(amount)s is on its way back to your original payment method.",
        amount=amount,
    )


def where_it_went(rows):
    """Where the parts of a refund already named went, in the current language."""
    wallet, online = _parts(rows)
    if wallet and online:
        return _(
            "%(wallet)s is in your wallet now and %(online)s is on its way back to your "
            "original payment method.",
            wallet=wallet, online=online,
        )  # fmt: skip
    if wallet:
        return _("It is in your wallet now.")
    if online:
        return _("It is on its way back to your original payment method.")
    return ""


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
def refund_approved(booking_id, amount, approval_id=None):
    """An approved further refund: how much and where each part went, once per approval
    (jobs recorded before the approval was passed carry none: told as before)."""
    item = db.session.get(IndividualBooking, booking_id)
    if item is None:
        return
    rows = refunds_made(booking_id, approval_id) if approval_id else []
    with speaking_to(item.visit.patient_id):
        title = _("Additional refund of %(amount)s", amount=format_inr(amount))
        body = _(
            "An additional refund of %(amount)s for %(service)s (visit %(number)s) has been "
            "approved.",
            amount=format_inr(amount), service=item.service.name, number=item.visit.number,
        )  # fmt: skip
        where = where_it_went(rows)
        if where:
            body += " " + where
    notify_user(
        item.visit.patient_id,
        "refund.approved",
        title,
        body,
        link=_patient_link(item.master_id),
        dedupe_key=f"refund-approved:{approval_id}" if approval_id else None,
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
