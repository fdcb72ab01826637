"""What happens around a booking, as notices: confirmation, cancellation, reschedule and
payment trouble. Each function runs inside the caller's transaction (a job's, usually) and
is idempotent: dedupe keys on notices, reminder sync by rows, so a re-run job sends nothing
twice. The jobs here are recorded by ``portal.notify.receivers`` when a capability says
what happened (``portal.events``; docs/notifications.md "Wiring")."""

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask_babel import gettext as _

from portal import jobs
from portal.booking import queries as booking_queries
from portal.booking import reschedule
from portal.booking.models import (
    ATTENTION_AMOUNT_MISMATCH,
    ATTENTION_LATE_PAYMENT,
    PAY_DESK,
    PAY_GATEWAY,
    PAY_WALLET,
    IndividualBooking,
    MasterBooking,
    Reschedule,
)
from portal.domain.rates import format_inr
from portal.domain.states import BookingStatus
from portal.extensions import db
from portal.i18n import N_
from portal.notify import alerts, ics, provider_words
from portal.notify.center import notify_user
from portal.notify.links import clinic_day, visit_path
from portal.notify.mail import absolute, queue_mail
from portal.notify.refund_notices import refund_told
from portal.notify.reminders import (
    local_time,
    retime_reminders,
    schedule_reminders,
    withdraw_reminders,
)
from portal.notify.wording import speaking_to, spoken_time, whose
from portal.refunds.lookup import refunds_made
from portal.refunds.money import split_of


def _describe(item):
    providers = ", ".join(p.display_name for p in item.providers)
    return _(
        "%(service)s with %(providers)s at %(clinic)s, %(when)s",
        service=item.service.name, providers=providers, clinic=item.clinic.name,
        when=local_time(item),
    )  # fmt: skip


@jobs.job("notify.booking_confirmed")
def on_booking_confirmed(visit_id):
    """A visit was paid: reminders for each confirmed item, the patient's notice and mail
    with the calendar file, each provider's notice, the NEW_BOOKING alert."""
    visit = booking_queries.visit_for_notice(visit_id)
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
    with speaking_to(visit.patient_id):
        title = _("Visit %(number)s confirmed", number=visit.number)
        patient_lines = [_describe(i) for i in items]
        body = (
            _(
                "Your visit %(number)s for %(name)s is confirmed:",
                number=visit.number,
                name=visit.for_name,
            )  # fmt: skip
            + "\n"
            + "\n".join(f"• {line}" for line in patient_lines)
            + "\n"
            + _("Paid %(amount)s.", amount=format_inr(paid))
            + (" " + _("Invoice %(number)s.", number=visit.invoice_no) if visit.invoice_no else "")
        )
        calendar = ics.attachment(
            items, url=absolute(link), filename=f"visit-{visit.number or visit.id}.ics"
        )
    notice = notify_user(
        visit.patient_id,
        "booking.confirmed",
        title,
        body,
        link=link,
        mail_template="booking_confirmed",
        mail_context={"visit": visit, "items": items, "lines": patient_lines, "paid": paid},
        attachments=[calendar],
        dedupe_key=f"visit-confirmed:{visit.id}",
    )
    for item in items:
        for provider in item.providers:
            with speaking_to(provider.user_id):
                title = _("New appointment: %(name)s", name=visit.for_name)
                body = _("%(what)s.", what=provider_words.appointment(item))
                body += provider_words.team(item, provider.id)
            notify_user(
                provider.user_id,
                "booking.new",
                title,
                body,
                link=visit_path(
                    "provider", visit_id=visit.id, booking_id=item.id, day=clinic_day(item)
                ),
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


def _cancelled_by(what, who):
    """Who cancelled, as the account holder reads it (``who``: ``provider_words.canceller``,
    the one rule the provider's notice reads too): their own cancellation is theirs ("You
    cancelled …"; review finding: it read "… is cancelled by the patient." to the patient
    themself), and one an administrator made at their request is "on your behalf"."""
    if who.who == "patient" and who.by_clinic:
        return _("%(what)s is cancelled by the clinic on your behalf.", what=what)
    if who.who == "patient":
        return _("You cancelled %(what)s.", what=what)
    if who.who == "clinic":
        return _("%(what)s is cancelled by the clinic.", what=what)
    if who.who == "provider":
        return _("%(what)s is cancelled by the provider.", what=what)
    return _("%(what)s is cancelled.", what=what)


def _cancelled_text(item, whom, who, reason, refund, refunds=()):
    """The title and body of the patient's cancellation notice, in the current language;
    ``who``: a ``provider_words.Canceller``; ``refunds``: the rows the cancellation made,
    each part told with its place."""
    body = _cancelled_by(_describe(item), who)
    if reason:
        body += " " + _("Reason: %(reason)s.", reason=reason)
    if refund or refunds:
        body += " " + refund_told(refunds, refund)
    return _("Cancelled: %(what)s", what=whom), body


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
    refunds = refunds_made(item.id) if refund else []
    refund_text = _refund_for_admins(refund, refunds)
    reason_text = f" Reason: {reason}." if reason else ""
    link = visit_path("patient", visit_id=visit.id)
    who = provider_words.canceller(item, by)
    with speaking_to(visit.patient_id):
        title, body = _cancelled_text(item, whose(item), who, reason, refund, refunds)
        # The confirmation's calendar file put it in their calendar: this takes it out.
        calendar = ics.attachment(
            [item],
            url=absolute(link),
            sequence=ics.next_sequence(item.id),
            filename=f"visit-{visit.number or visit.id}-cancelled.ics",
            method="CANCEL",
        )
    notify_user(
        visit.patient_id,
        "booking.cancelled",
        title,
        body,
        link=link,
        attachments=[calendar],
        dedupe_key=f"booking-cancelled:{item.id}",
    )
    for provider in item.providers:
        with speaking_to(provider.user_id):
            title, body = provider_words.cancelled(item, provider.id, who, reason)
        notify_user(
            provider.user_id,
            "booking.cancelled",
            title,
            body,
            link=visit_path(
                "provider", visit_id=visit.id, booking_id=item.id, day=clinic_day(item)
            ),
            dedupe_key=f"booking-cancelled:{item.id}",
        )
    alerts.raise_alert(
        alerts.CANCELLATION,
        f"Cancellation in visit {visit.number}",
        f"{visit.for_name}: {what}{f' (by the {by})' if by else ''}.{reason_text}{refund_text}",
        link=visit_path("admin", visit_id=visit.id),
        dedupe_key=f"cancellation:{item.id}",
    )


def _refund_for_admins(refund, refunds):
    """The admins' (English) words for a cancellation's refund and where it went."""
    if not refund:
        return ""
    if not refunds:
        return f" A refund of {format_inr(refund)} is on its way."
    split = split_of(refunds)
    wallet, online = split.to_wallet, split.to_gateway
    parts = [f"{format_inr(wallet)} to the wallet" if wallet else ""]
    parts.append(f"{format_inr(online)} back through Razorpay" if online else "")
    total = format_inr(split.total)
    return f" Refund {total}: {', '.join(p for p in parts if p)}."


@jobs.job("notify.booking_rescheduled")
def rescheduled_job(booking_id, old_start=None, reschedule_id=None):
    on_booking_rescheduled(
        booking_id,
        old_start=datetime.fromisoformat(old_start) if old_start else None,
        reschedule_id=reschedule_id,
    )


def on_booking_rescheduled(booking_id, *, old_start=None, reschedule_id=None):
    """An individual booking moved: reminders re-timed; patient (with an updated calendar
    file, same UID, higher SEQUENCE) and providers told, once per move: the notices are
    keyed by the move, not the new time (A → B → A → B is told three times).

    The job may run late: a booking cancelled since is not told as moved (its CANCEL file
    went out; a PUBLISH now would put the visit back in the calendar), nor a move since
    superseded by another (that one's own notice tells the time it holds)."""
    item = db.session.get(IndividualBooking, booking_id)
    if item is None:
        return
    retime_reminders(booking_id)
    move = db.session.get(Reschedule, reschedule_id) if reschedule_id else None
    if not reschedule.move_holds(item, move):
        return
    visit = item.visit
    # Jobs queued before moves were keyed carry no reschedule id: the new time keys them.
    stamp = f"r{reschedule_id}" if reschedule_id else item.start_at.strftime("%Y%m%dT%H%M")
    link = visit_path("patient", visit_id=visit.id)
    sequence = ics.next_sequence(item.id)
    with speaking_to(visit.patient_id):
        title, body = _rescheduled_text(item, whose(item), _describe(item), old_start)
        body += _fee_told(reschedule_id)
        calendar = ics.attachment(
            [item],
            url=absolute(link),
            sequence=sequence,
            filename=f"visit-{visit.number or visit.id}.ics",
        )
    notify_user(
        visit.patient_id,
        "booking.rescheduled",
        title,
        body,
        link=link,
        attachments=[calendar],
        dedupe_key=f"booking-rescheduled:{item.id}:{stamp}",
    )
    for provider in item.providers:
        with speaking_to(provider.user_id):
            what = provider_words.appointment(item)
            title, body = _rescheduled_text(item, visit.for_name, what, old_start)
            body += provider_words.team(item, provider.id)
        notify_user(
            provider.user_id,
            "booking.rescheduled",
            title,
            body,
            link=visit_path(
                "provider", visit_id=visit.id, booking_id=item.id, day=clinic_day(item)
            ),
            dedupe_key=f"booking-rescheduled:{item.id}:{stamp}",
        )


def on_meet_link_changed(booking_id):
    """An online booking's meeting link was set, changed or removed: the patient who has
    its calendar entry (the visit is paid) gets the link and the updated calendar file
    (same UID, higher SEQUENCE: its LOCATION is the link, "Online" without one). Called in
    the change's unit of work, so each change is told once."""
    item = db.session.get(IndividualBooking, booking_id)
    if item is None or item.status not in (BookingStatus.CONFIRMED, BookingStatus.STARTED):
        return None
    visit = item.visit
    link = visit_path("patient", visit_id=visit.id)
    with speaking_to(visit.patient_id):
        title = _("Meeting link: %(what)s", what=whose(item))
        body = _("%(what)s.", what=_describe(item)) + " "
        if item.meet_link:
            body += _("Join online: %(link)s", link=item.meet_link)
        else:
            body += _("The meeting link was withdrawn; you will be sent the new one.")
        calendar = ics.attachment(
            [item],
            url=absolute(link),
            sequence=ics.next_sequence(item.id),
            filename=f"visit-{visit.number or visit.id}.ics",
        )
    return notify_user(
        visit.patient_id,
        "booking.meet_link",
        title,
        body,
        link=link,
        attachments=[calendar],
    )


def _rescheduled_text(item, whom, what, old_start):
    """``what``: the appointment as the reader calls it (the patient's names its providers,
    a provider's its patient)."""
    if old_start:
        body = _("%(what)s (was %(was)s).", what=what, was=local_time_at(item, old_start))
    else:
        body = _("%(what)s.", what=what)
    return _("Rescheduled: %(what)s", what=whom), body


FEE_PAID = {
    PAY_WALLET: N_("A fee of %(amount)s for the change was paid from your wallet."),
    PAY_GATEWAY: N_("A fee of %(amount)s for the change was paid online."),
    PAY_DESK: N_("A fee of %(amount)s for the change was paid at the clinic."),
}


def _fee_told(reschedule_id):
    """The move's fee and how it was paid (whoever moved it: an administrator may take it
    from the wallet), as a sentence to add; nothing for a free move."""
    resched = db.session.get(Reschedule, reschedule_id) if reschedule_id else None
    if resched is None or not resched.total or resched.pay_with not in FEE_PAID:
        return ""
    return " " + _(FEE_PAID[resched.pay_with], amount=format_inr(resched.total))


def local_time_at(item, when):
    return spoken_time(when.astimezone(ZoneInfo(item.clinic.timezone)))


ATTENTION_KINDS = {
    "PAYMENT_FAILED": alerts.PAYMENT_FAILED,
    "AMOUNT_MISMATCH": alerts.PAYMENT_FAILED,
    "LATE_PAYMENT_TO_WALLET": alerts.PAYMENT_FAILED,
    "LINK_EXPIRED": alerts.PAYMENT_LINK_EXPIRED,
    "LINK_EXPIRY_FAILED": alerts.JOB_FAILED,  # HIGH: a job gave up, a visit lapsed for it
    "RECONCILIATION": alerts.RECONCILIATION_DISCREPANCY,
    "CLOSED_ACCOUNT_REFUNDED": alerts.PAYMENT_FAILED,
}
ATTENTION_TITLES = {
    "PAYMENT_FAILED": "Payment failed",
    "AMOUNT_MISMATCH": "Payment amount mismatch",
    "LATE_PAYMENT_TO_WALLET": "Late payment kept in the wallet",
    "LINK_EXPIRED": "Payment link expired",
    "LINK_EXPIRY_FAILED": "Payment link expiry job gave up; the visit lapsed",
    "RECONCILIATION": "Reconciliation discrepancy",
    "CLOSED_ACCOUNT_REFUNDED": "Paid after the account was closed: refunded to its source",
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
    # Never to an inactive or closed account (as ``notify_user``): its address is gone.
    if not visit.patient.active or visit.patient.is_closed:
        return
    if reason in (ATTENTION_LATE_PAYMENT, ATTENTION_AMOUNT_MISMATCH):
        with speaking_to(visit.patient_id):
            subject = _("About your payment for visit %(number)s", number=visit.number)
            text = _(
                "Hello %(name)s,\n\nWe received your payment for visit %(number)s but could "
                "not use it to confirm the booking (the slot was no longer held, or the "
                "amount differed). The money is in your Clinic Portal wallet; our team will "
                "contact you.\n",
                name=visit.patient.name, number=visit.number,
            )  # fmt: skip
        queue_mail(
            visit.patient.email, subject, text, kind="payment_attention", user_id=visit.patient_id
        )


@jobs.job("notify.reschedule_failed")
def reschedule_failed(reschedule_id):
    resched = db.session.get(Reschedule, reschedule_id)
    if resched is None:
        return
    with speaking_to(resched.visit.patient_id):
        title = _("Reschedule not completed")
        # Its reason is a catalogue message as stored; none stored must not become
        # ``_("")``, which is the catalogue's header.
        reason = resched.failure_reason
        reason = _(reason) if reason else _("The new time could not be kept")
        body = _(
            "%(reason)s. %(amount)s is in your wallet.",
            reason=reason, amount=format_inr(resched.total),
        )  # fmt: skip
    notify_user(
        resched.visit.patient_id,
        "booking.reschedule_failed",
        title,
        body,
        link=visit_path("patient", visit_id=resched.visit_id),
        dedupe_key=f"reschedule-failed:{resched.id}",
    )


@jobs.job("notify.reschedule_fee_unapplied")
def reschedule_fee_unapplied(reschedule_id, payment_id, amount):
    """A fee payment that moved nothing (``reschedule_payment._unapplied``): the wrong
    amount (the request may still wait for its fee), or one for a move no longer waiting
    for it. It is in the wallet."""
    resched = db.session.get(Reschedule, reschedule_id)
    if resched is None:
        return
    with speaking_to(resched.visit.patient_id):
        title = _("Your payment to move an appointment is in your wallet")
        if amount != resched.total:
            body = _(
                "%(amount)s was not the fee asked (%(fee)s), so nothing was moved for it. "
                "It is in your wallet for your next booking.",
                amount=format_inr(amount),
                fee=format_inr(resched.total),
            )
        else:
            body = _(
                "%(amount)s arrived after that request had ended (the time was changed "
                "meanwhile, or the request ran out), so nothing was moved for it. It is in "
                "your wallet for your next booking.",
                amount=format_inr(amount),
            )
    notify_user(
        resched.visit.patient_id,
        "booking.reschedule_fee_unapplied",
        title,
        body,
        link=visit_path("patient", visit_id=resched.visit_id),
        dedupe_key=f"reschedule-fee-unapplied:{payment_id}",
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
