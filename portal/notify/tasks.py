"""What happens around a booking, as notices: confirmation, cancellation, reschedule and
payment trouble. Each function runs inside the caller's transaction (a job's, usually) and
is idempotent: dedupe keys on notices, reminder sync by rows, so a re-run job sends nothing
twice. The jobs here are recorded by ``portal.notify.receivers`` when a capability says
what happened (``portal.events``; docs/notifications.md "Wiring")."""

from datetime import datetime

import sqlalchemy as sa

from portal import jobs
from portal.booking.models import (
    ATTENTION_AMOUNT_MISMATCH,
    ATTENTION_LATE_PAYMENT,
    IndividualBooking,
    MasterBooking,
    Reschedule,
)
from portal.db import utcnow
from portal.domain.rates import format_inr
from portal.domain.states import BookingStatus
from portal.extensions import db
from portal.notify import alerts, ics
from portal.notify.center import notify_user
from portal.notify.links import visit_path
from portal.notify.mail import absolute, queue_mail
from portal.notify.reminders import (
    local_time,
    retime_reminders,
    schedule_reminders,
    withdraw_reminders,
)


def _describe(item):
    providers = ", ".join(p.display_name for p in item.providers)
    return f"{item.service.name} with {providers} at {item.clinic.name}, {local_time(item)}"


@jobs.job("notify.booking_confirmed")
def on_booking_confirmed(visit_id):
    """A visit was paid: reminders for each confirmed item, the patient's notice and mail
    with the calendar file, each provider's notice, the NEW_BOOKING alert."""
    visit = db.session.get(MasterBooking, visit_id)
    if visit is None:
        return None
    items = [i for i in visit.items if i.status == BookingStatus.CONFIRMED]
    for item in items:
        schedule_reminders(item.id)
    if not items:
        return None
    lines = [_describe(i) for i in items]
    paid = sum(i.paid_amount for i in items)
    link = visit_path("patient", visit_id=visit.id)
    body = (
        f"Your visit {visit.number} for {visit.for_name} is confirmed:\n"
        + "\n".join(f"• {line}" for line in lines)
        + f"\nPaid {format_inr(paid)}."
        + (f" Invoice {visit.invoice_no}." if visit.invoice_no else "")
    )
    notice = notify_user(
        visit.patient_id,
        "booking.confirmed",
        f"Visit {visit.number} confirmed",
        body,
        link=link,
        mail_template="booking_confirmed",
        mail_context={"visit": visit, "items": items, "lines": lines, "paid": paid},
        attachments=[
            ics.attachment(
                items, url=absolute(link), filename=f"visit-{visit.number or visit.id}.ics"
            )
        ],
        dedupe_key=f"visit-confirmed:{visit.id}",
    )
    for item in items:
        for provider in item.providers:
            notify_user(
                provider.user_id,
                "booking.new",
                f"New appointment: {visit.for_name}",
                f"{item.service.name} with {visit.for_name} at {item.clinic.name}, "
                f"{local_time(item)}.",
                link=visit_path("provider", visit_id=visit.id, booking_id=item.id),
                dedupe_key=f"booking-confirmed:{item.id}:{provider.user_id}",
            )
    alerts.raise_alert(
        alerts.NEW_BOOKING,
        f"New booking {visit.number}",
        f"{visit.for_name}: " + "; ".join(lines),
        link=visit_path("admin", visit_id=visit.id),
        dedupe_key=f"new-booking:{visit.id}",
    )
    return notice


@jobs.job("notify.booking_cancelled")
def on_booking_cancelled(booking_id, *, by=None, refund=None, reason=None):
    """An individual booking was cancelled: reminders withdrawn; the patient, each provider
    and the admins (CANCELLATION) told. ``by``: "patient" | "provider" | "clinic";
    ``refund``: paise refunded (shown when given)."""
    item = db.session.get(IndividualBooking, booking_id)
    if item is None:
        return
    withdraw_reminders(booking_id, "booking cancelled")
    visit = item.visit
    what = _describe(item)
    refund_text = f" A refund of {format_inr(refund)} is on its way." if refund else ""
    reason_text = f" Reason: {reason}." if reason else ""
    notify_user(
        visit.patient_id,
        "booking.cancelled",
        f"Cancelled: {item.service.name}",
        f"{what} is cancelled{f' by the {by}' if by else ''}.{reason_text}{refund_text}",
        link=visit_path("patient", visit_id=visit.id),
        dedupe_key=f"booking-cancelled:{item.id}",
    )
    for provider in item.providers:
        notify_user(
            provider.user_id,
            "booking.cancelled",
            f"Cancelled: {visit.for_name}",
            f"{what} is cancelled.{reason_text}",
            link=visit_path("provider", visit_id=visit.id, booking_id=item.id),
            dedupe_key=f"booking-cancelled:{item.id}",
        )
    alerts.raise_alert(
        alerts.CANCELLATION,
        f"Cancellation in visit {visit.number}",
        f"{visit.for_name}: {what}{f' (by the {by})' if by else ''}.{reason_text}{refund_text}",
        link=visit_path("admin", visit_id=visit.id),
        dedupe_key=f"cancellation:{item.id}",
    )


@jobs.job("notify.booking_rescheduled")
def rescheduled_job(booking_id, old_start=None):
    on_booking_rescheduled(
        booking_id, old_start=datetime.fromisoformat(old_start) if old_start else None
    )


def on_booking_rescheduled(booking_id, *, old_start=None):
    """An individual booking moved: reminders re-timed; patient (with an updated calendar
    file, same UID, higher SEQUENCE) and providers told."""
    item = db.session.get(IndividualBooking, booking_id)
    if item is None:
        return
    retime_reminders(booking_id)
    visit = item.visit
    was = f" (was {local_time_at(item, old_start)})" if old_start else ""
    stamp = item.start_at.strftime("%Y%m%dT%H%M")
    link = visit_path("patient", visit_id=visit.id)
    sequence = int(utcnow().timestamp() // 60) % 2_000_000_000
    notify_user(
        visit.patient_id,
        "booking.rescheduled",
        f"Rescheduled: {item.service.name}",
        f"{_describe(item)}{was}.",
        link=link,
        attachments=[
            ics.attachment(
                [item],
                url=absolute(link),
                sequence=sequence,
                filename=f"visit-{visit.number or visit.id}.ics",
            )
        ],
        dedupe_key=f"booking-rescheduled:{item.id}:{stamp}",
    )
    for provider in item.providers:
        notify_user(
            provider.user_id,
            "booking.rescheduled",
            f"Rescheduled: {visit.for_name}",
            f"{_describe(item)}{was}.",
            link=visit_path("provider", visit_id=visit.id, booking_id=item.id),
            dedupe_key=f"booking-rescheduled:{item.id}:{stamp}",
        )


def local_time_at(item, when):
    from zoneinfo import ZoneInfo

    local = when.astimezone(ZoneInfo(item.clinic.timezone))
    return local.strftime("%a %d %b %Y, %I:%M %p ").lstrip("0") + (local.tzname() or "")


ATTENTION_KINDS = {
    "PAYMENT_FAILED": alerts.PAYMENT_FAILED,
    "AMOUNT_MISMATCH": alerts.PAYMENT_FAILED,
    "LATE_PAYMENT_TO_WALLET": alerts.PAYMENT_FAILED,
    "LINK_EXPIRED": alerts.PAYMENT_LINK_EXPIRED,
    "RECONCILIATION": alerts.RECONCILIATION_DISCREPANCY,
}
ATTENTION_TITLES = {
    "PAYMENT_FAILED": "Payment failed",
    "AMOUNT_MISMATCH": "Payment amount mismatch",
    "LATE_PAYMENT_TO_WALLET": "Late payment kept in the wallet",
    "LINK_EXPIRED": "Payment link expired",
    "RECONCILIATION": "Reconciliation discrepancy",
}


def on_payment_attention(visit_id, reason):
    """A visit needs an admin (``portal.events.visit_needs_attention``)."""
    visit = db.session.get(MasterBooking, visit_id)
    if visit is None:
        return []
    kind = ATTENTION_KINDS.get(reason, alerts.PAYMENT_FAILED)
    title = (
        f"{ATTENTION_TITLES.get(reason, reason.replace('_', ' ').capitalize())}: "
        f"visit {visit.number}"
    )
    return alerts.raise_alert(
        kind,
        title,
        f"{visit.for_name} ({visit.patient.email}).",
        link=visit_path("admin", visit_id=visit.id),
        dedupe_key=f"attention:{visit.id}:{reason}:{_attention_round(visit, reason)}",
    )


@jobs.job("notify.payment_attention")
def payment_attention(visit_id, reason):
    """HIGH admin alert; the patient hears about money kept for them."""
    visit = db.session.get(MasterBooking, visit_id)
    if visit is None:
        return
    on_payment_attention(visit_id, reason)
    if reason in (ATTENTION_LATE_PAYMENT, ATTENTION_AMOUNT_MISMATCH):
        queue_mail(
            visit.patient.email,
            f"About your payment for visit {visit.number}",
            f"Hello {visit.patient.name},\n\nWe received your payment for visit "
            f"{visit.number} but could not use it to confirm the booking (the slot "
            f"was no longer held, or the amount differed). The money is in your "
            f"Clinic Portal wallet; our team will contact you.\n",
        )


@jobs.job("notify.reschedule_failed")
def reschedule_failed(reschedule_id):
    resched = db.session.get(Reschedule, reschedule_id)
    if resched is None:
        return
    notify_user(
        resched.visit.patient_id,
        "booking.reschedule_failed",
        "Reschedule not completed",
        f"{resched.failure_reason}. {format_inr(resched.total)} is in your wallet.",
        link=visit_path("patient", visit_id=resched.visit_id),
        dedupe_key=f"reschedule-failed:{resched.id}",
    )


def _attention_round(visit, reason):
    """A visit may need attention for the same reason again later (a second link expiring):
    count the payments so each episode alerts once."""
    return len(visit.payments)


def confirmed_items(visit_id):
    return db.session.scalars(
        sa.select(IndividualBooking).where(
            IndividualBooking.master_id == visit_id,
            IndividualBooking.status == BookingStatus.CONFIRMED,
        )
    ).all()
